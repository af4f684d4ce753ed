"""What the master remembers between reactions outlives the reactor's client refresh.

Salt's reactor makes a new ``RunnerClient`` every ``reactor_refresh_interval`` seconds
(salt/utils/reactor.py, ``populate_client_cache``), and that client's loader runs
``_runners/hpc_react.py`` again in the same module object. Two clients made the same way stand
here for the reactor's before and after a refresh; Salt's loader is real, and only the
signature check, the master's pillar cache and the publish are recorders."""

from __future__ import annotations

import logging

import pytest
import salt.config
import salt.runner
from testlib import ROOT

ADDRESS = "10.12.0.22"
LOG = logging.getLogger("test_reactor_memory")  # not Salt's deferred handler (closed streams at exit)
LOG.propagate = False


@pytest.fixture
def refresh(tmp_path, monkeypatch):
    """A function making the reactor's runner client afresh, as a refresh does: it returns the
    loaded ``hpc_react`` functions, with Salt's parts replaced by recorders (``published``)."""
    opts = salt.config.master_config(None)
    (tmp_path / "ext").mkdir()
    opts.update(runner_dirs=[str(ROOT / "_runners")], utils_dirs=[str(ROOT / "_utils")],
                cachedir=str(tmp_path), extension_modules=str(tmp_path / "ext"))
    published: list = []
    clients: list = []
    lvs = {"directors": "lablvs[1-2]", "load": {"min_interval": 30},
           "services": [{"real_servers": [{"host": f"labfe{i}"} for i in (1, 2, 3)]}]}

    def make():
        clients.append(salt.runner.RunnerClient(opts))
        functions = clients[-1].functions
        module = functions["hpc_react.lvs_health"].__globals__
        memory = module.get("hpc_reactor_memory")
        if memory and not published:  # this test's first client: nothing remembered from another test
            monkeypatch.setattr(memory, "LAST_SEEN", {})
            monkeypatch.setattr(memory, "REWEIGHERS", {})
        verdict = module["hpc_signed"].Verdict
        monkeypatch.setitem(module, "_verified", lambda tag, data: verdict(True, data["signer"], "verified",
                                                                            data["signer"]))
        monkeypatch.setitem(module, "_directors", lambda minion: ["lablvs1", "lablvs2"])
        monkeypatch.setitem(module, "_lvs_pillar", lambda minion: lvs)
        monkeypatch.setitem(module, "_publish", lambda tgt, fun, **kw: published.append((tgt, fun, kw)) or "jid")
        monkeypatch.setitem(module, "log", LOG)
        return functions

    make.published = published
    yield make
    for client in clients:
        client.destroy()


def test_a_director_asked_to_re_probe_is_asked_again_after_a_refresh(refresh):
    """lablvs1 alone reports labfe2 down: lablvs2 is asked to re-probe. The reactor refreshes
    its client. lablvs1 reports labfe2 back: lablvs2, whose verdict the master never heard, is
    asked again. Without this, the lab's re-probe test failed once (a fresh-clone .ci/run, 12-04)."""
    before = refresh()
    before["hpc_react.lvs_health"](f"hpc/lvs/health/{ADDRESS}/down", {"signer": "lablvs1"}, window=0.05)
    assert [p[0] for p in refresh.published] == [["lablvs2"]]
    after = refresh()
    after["hpc_react.lvs_health"](f"hpc/lvs/health/{ADDRESS}/up", {"signer": "lablvs1"}, window=0.05)
    assert [(p[0], p[2]["kwarg"]) for p in refresh.published[1:]] == [(["lablvs2"], {"addresses": [ADDRESS]})]


def test_the_load_policy_keeps_its_memory_across_a_refresh(refresh):
    """labfe2's steady load moved its weight once; the same load after a refresh moves nothing
    (a new memory would treat it as the first report and send both directors a job)."""
    before = refresh()
    event = {"cmd": "_minion_event", "id": "labfe2", "signer": "labfe2", "data": {"per_core": 0.2}}
    assert before["hpc_react.lvs_load"]("hpc/lvs/load/labfe2", event, batch=0.05)["acted"]
    jobs = len(refresh.published)
    after = refresh()
    assert after["hpc_react.lvs_load"]("hpc/lvs/load/labfe2", event, batch=0.05)["acted"] is False
    assert len(refresh.published) == jobs
