"""``_modules/ipvs.py`` on the fake IPVS handle: what the module adds to the planner, here where it
is cheap (a director's apply costs a minute and more of a TCG VM in the lab).

The lab shows the real path end to end (tests/integration/lab/test_lvs_load.py: a busy frontend's
weight goes down on both directors and comes back); this file shows the pillar's switch over it:
``lvs.load.enabled: false`` gives the pillar's weights at the next apply and keeps the factors
aside, and switched on again they are back."""

from __future__ import annotations

import pytest
from testlib import example_pillar, load_extension, mutate

from hpc_ipvs_kernel import FakeIpvs

DIRECTOR, FRONTEND, ADDRESS = "lablvs1", "labfe2", "10.12.0.22"
VIP = "tcp 10.12.0.10:22"
FULL = 100  # labfe2's weight in the example pillar


@pytest.fixture
def director(tmp_path):
    """The module as Salt would load it on lablvs1, its kernel a FakeIpvs."""
    module = load_extension("_modules", "ipvs", {"cachedir": str(tmp_path / "cache"), "id": DIRECTOR})
    module.__context__ = {}
    module.__pillar__ = example_pillar()
    module.__salt__ = {}
    module.LOCK = str(tmp_path / "ipvs.lock")
    module.QUIESCENT = str(tmp_path / "expire_quiescent_template")
    module.kernel = FakeIpvs()
    module.kernel.links.add("eth0")  # the sync daemons' interface in the example pillar
    module._handle = lambda: module.kernel
    module._load_modules = lambda table: None  # modprobe: the fake needs none
    return module


def _weight(module) -> int:
    return next(r.weight for r in module.kernel.read().reals if r.service == VIP and r.address == ADDRESS)


def _load_enabled(module, enabled: bool) -> None:
    module.__pillar__ = mutate(module.__pillar__, "lvs.load.enabled", enabled)


def test_load_switched_off_gives_the_pillars_weights_and_keeps_the_factor_for_when_it_is_back(director):
    assert director.apply()["errors"] == []
    assert _weight(director) == FULL
    assert director.set_load({FRONTEND: 0.5})["errors"] == []
    assert _weight(director) == FULL // 2

    _load_enabled(director, False)
    # labfe2 is a real server of both pools (direct routing on .10, NAT on .9): both go back.
    assert director.apply(test=True)["changes"] == [
        "update real server -a -t 10.12.0.10:22 -r 10.12.0.22:22 -g -w 100",
        "update real server -a -t 10.12.0.9:22 -r 10.11.0.22:22 -m -w 100"]
    assert director.apply()["errors"] == []
    assert _weight(director) == FULL
    assert director.overrides()["load"] == {"10.11.0.22": 0.5, ADDRESS: 0.5}  # kept aside, not forgotten
    # A report that arrives meanwhile is kept too, and changes no weight.
    assert director.set_load({FRONTEND: 0.3})["changes"] == []
    assert _weight(director) == FULL

    _load_enabled(director, True)
    assert director.apply()["errors"] == []
    assert _weight(director) == 30
    assert director.apply()["changes"] == []
