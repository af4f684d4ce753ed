"""The ipvs module on the lab's directors (QEMU VMs with Debian's kernel: real IPVS).

The IPVS handle's suite runs in a director's kernel; after the highstate both directors hold the
pillar's table; drift is planned exactly by ``test=True`` and repaired in place; a service made by
hand survives; a flushed table comes back without a highstate.
"""

from __future__ import annotations

import time

import hpc_ipvs
import hpc_pillar
from hpclab import cluster
from hpclab.registry import REPO

DIRECTORS = ("lablvs1", "lablvs2")
VIP = "10.12.0.10:22"
HAND_MADE = "-A -t 10.12.0.77:80 -s rr"


def _desired() -> hpc_ipvs.Table:
    pillar = cluster.load_pillar()
    return hpc_ipvs.desired(hpc_pillar.load(pillar)["lvs"], hpc_pillar.inventory(pillar))


def _table(lab: cluster.Lab, director: str) -> hpc_ipvs.Table:
    rc, out, err = lab.exec(director, ["ipvsadm", "-S", "-n"])
    assert rc == 0, err
    return hpc_ipvs.parse_rules(out)


def _ipvsadm(lab: cluster.Lab, director: str, *lines: str) -> None:
    for line in lines:
        rc, _, err = lab.exec(director, ["ipvsadm", *line.split()])
        assert rc == 0, f"ipvsadm {line}: {err}"


def test_the_handle_suite_passes_in_a_directors_kernel(lab):
    """tests/functional/test_ipvs_handle.py's netlink half, in a throwaway netns of lablvs1."""
    script = (f"cd {REPO} && ip link set lo up && HPC_IPVS_REAL=1 .venv/bin/python -m pytest -q "
              "-p no:cacheprovider -p no:salt-factories -k netlink tests/functional/test_ipvs_handle.py")
    rc, out, err = lab.exec("lablvs1", ["unshare", "-n", "sh", "-c", script], timeout=300)
    assert rc == 0, out[-3000:] + err[-2000:]
    assert " passed" in out and "skipped" not in out and "failed" not in out, out[-2000:]


def test_both_directors_hold_the_pillars_table(lab, converged):
    want = _desired()
    assert want.services, "the example pillar has an LVS service"
    for director in DIRECTORS:
        have = _table(lab, director)
        assert have.only(s.key() for s in want.services) == want, (director, have.text())
        assert lab.salt_json([director, "ipvs.plan"], timeout=120)[director] == {"changes": [], "problems": []}


def _apply(lab: cluster.Lab, director: str, test: bool) -> dict:
    args = [director, "state.apply", "ipvs", "-t", "180"] + (["test=True"] if test else [])
    data = lab.salt_json(args, timeout=300)[director]
    return next(s for s in data.values() if s["__id__"] == "ipvs-config-ipvs-table_applied")


def test_drift_is_planned_exactly_and_repaired_in_place(lab, converged):
    """A scheduler and a weight changed by hand, a real server added by hand to our service, a
    service made by hand on another VIP: test=True lists exactly the steps the real run then
    applies (edits in place, one delete), and the hand-made service is still there after."""
    director = "lablvs2"
    # The minute's re-apply (hpc_refresh_ipvs) would repair the drift too, between our edit and
    # the test=True run (seen in CI): paused for the test.
    lab.salt_json([director, "beacons.disable_beacon", "hpc_refresh_ipvs"], timeout=120)
    _ipvsadm(lab, director, f"-E -t {VIP} -s rr -p 600", f"-e -t {VIP} -r 10.12.0.22:22 -g -w 5",
             f"-a -t {VIP} -r 10.12.0.99:22 -g -w 1", HAND_MADE)
    try:
        expected = [f"update service -A -t {VIP} -s wlc -p 600",
                    f"update real server -a -t {VIP} -r 10.12.0.22:22 -g -w 100",
                    f"delete real server -a -t {VIP} -r 10.12.0.99:22 -g -w 1"]
        predicted = _apply(lab, director, test=True)
        assert predicted["result"] is None, predicted
        assert predicted["changes"]["plan"] == expected
        applied = _apply(lab, director, test=False)
        assert applied["result"] is True, applied
        assert applied["changes"]["applied"] == predicted["changes"]["plan"]
        have = _table(lab, director)
        assert have.only(s.key() for s in _desired().services) == _desired()
        assert have.service("tcp 10.12.0.77:80") is not None, have.text()
        again = _apply(lab, director, test=False)
        assert again["result"] is True and not again["changes"], again
    finally:
        lab.exec(director, ["ipvsadm", "-D", "-t", "10.12.0.77:80"])
        lab.salt_json([director, "beacons.enable_beacon", "hpc_refresh_ipvs"], timeout=120)


def test_a_flushed_table_comes_back_without_a_highstate(lab, converged):
    """``ipvsadm -C`` (or a reboot: an empty table) on a director: the hpc_refresh beacon's
    ``ipvs.reapply`` restores the recorded table within its period (60 s + splay 10)."""
    director = "lablvs1"
    _ipvsadm(lab, director, "-C", HAND_MADE)
    try:
        want, deadline = _desired(), time.monotonic() + 90
        while time.monotonic() < deadline:
            have = _table(lab, director)
            if have.only(s.key() for s in want.services) == want:
                break
            time.sleep(2)
        assert have.only(s.key() for s in want.services) == want, have.text()
        assert have.service("tcp 10.12.0.77:80") is not None, "the reapply removed a service it does not own"
    finally:
        lab.exec(director, ["ipvsadm", "-D", "-t", "10.12.0.77:80"])
