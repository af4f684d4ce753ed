"""The master's answer to a director's health report (hpc_react.lvs_health), with Salt's parts
(signature check, pillar cache, publish, event bus) replaced by recorders: who is believed, and
who is asked to re-probe."""

from __future__ import annotations

import importlib.util
import logging
import threading

import pytest
from testlib import ROOT

from hpc_signed import Verdict

spec = importlib.util.spec_from_file_location("hpc_react", ROOT / "_runners" / "hpc_react.py")
react = importlib.util.module_from_spec(spec)
spec.loader.exec_module(react)
react.log = logging.getLogger("test_react_lvs_health")  # not Salt's deferred handler (closed streams)
react.log.propagate = False
TAG = "hpc/lvs/health/10.12.0.22/down"


@pytest.fixture
def master(monkeypatch):
    """The runner as the lab's master would run it: lablvs1 and lablvs2 are the directors."""
    calls = {"published": [], "fired": []}
    monkeypatch.setattr(react, "_verified",
                        lambda tag, data: Verdict(True, data["signer"], "verified", data["signer"]))
    monkeypatch.setattr(react, "_directors", lambda minion: ["lablvs1", "lablvs2"])
    monkeypatch.setattr(react, "_publish", lambda tgt, fun, **kw: calls["published"].append((tgt, fun, kw)) or "jid1")
    monkeypatch.setattr(react, "_fire", lambda tag, data: calls["fired"].append((tag, data)))
    return calls


def report_together(signers, window=0.2):
    results = {}

    def one(signer):
        results[signer] = react.lvs_health(TAG, {"signer": signer}, window=window)

    threads = [threading.Thread(target=one, args=(s,)) for s in signers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_directors_that_agree_cost_no_job(master):
    results = report_together(["lablvs1", "lablvs2"])
    assert master["published"] == []
    assert sorted(r.get("reason", "batched") for r in results.values()) == ["batched", "every director reported it"]


def test_a_silent_director_and_only_it_is_asked_to_re_probe(master):
    result = react.lvs_health(TAG, {"signer": "lablvs1"}, window=0.1)
    assert master["published"] == [
        (["lablvs2"], "ipvs.recheck", {"tgt_type": "list", "kwarg": {"addresses": ["10.12.0.22"]}})]
    assert result["rechecked"] == ["lablvs2"] and result["reporters"] == ["lablvs1"]


def test_a_report_from_a_minion_that_is_no_director_is_refused_and_recorded(master):
    result = react.lvs_health(TAG, {"signer": "labcn2"}, window=0.1)
    assert result["acted"] is False and "labcn2 is not an LVS director" in result["reason"]
    assert master["published"] == []
    assert master["fired"][0][0] == react.REJECTED and master["fired"][0][1]["claimed"] == "labcn2"
