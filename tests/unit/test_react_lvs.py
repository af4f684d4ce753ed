"""The master's answer to the directors' health reports (hpc_react.lvs_health) and the frontends'
load reports (hpc_react.lvs_load), with Salt's parts (signature check, pillar cache, publish,
event bus) replaced by recorders: who is believed, who is asked to re-probe, which weights move."""

from __future__ import annotations

import importlib.util
import logging
import threading
import time

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
    monkeypatch.setattr(react.hpc_reactor_memory, "LAST_SEEN", {})
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
    assert sorted(r.get("reason", "batched") for r in results.values()) == ["batched", "every director says so"]


def test_a_silent_director_and_only_it_is_asked_to_re_probe(master):
    result = react.lvs_health(TAG, {"signer": "lablvs1"}, window=0.1)
    assert master["published"] == [
        (["lablvs2"], "ipvs.recheck", {"tgt_type": "list", "kwarg": {"addresses": ["10.12.0.22"]}})]
    assert result["rechecked"] == ["lablvs2"] and result["reporters"] == ["lablvs1"]


def test_a_director_that_said_so_earlier_is_not_silent(master):
    """lablvs1 saw labfe2 come back 20 s before lablvs2 (whose probes were off): lablvs2's late
    report agrees with lablvs1's last word, so nobody is asked; a report that contradicts a
    director's last word still is."""
    up = "hpc/lvs/health/10.12.0.22/up"
    react.lvs_health(up, {"signer": "lablvs1"}, window=0.05)
    assert master["published"] == []  # lablvs2 never said otherwise: it holds labfe2 up
    assert react.lvs_health(up, {"signer": "lablvs2"}, window=0.05)["reason"] == "every director says so"
    assert master["published"] == []
    react.lvs_health(TAG, {"signer": "lablvs2"}, window=0.05)
    assert [p[0] for p in master["published"]] == [["lablvs1"]]


def test_a_director_cut_off_from_every_server_costs_one_job(master):
    """lablvs1 loses its link: it reports all three frontends down within the window; lablvs2 is
    asked once, for all three (each job costs a TCG director seconds)."""
    results = {}

    def one(address):
        results[address] = react.lvs_health(f"hpc/lvs/health/{address}/down", {"signer": "lablvs1"}, window=0.2)

    addresses = ["10.12.0.21", "10.12.0.22", "10.12.0.23"]
    threads = [threading.Thread(target=one, args=(a,)) for a in addresses]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert master["published"] == [
        (["lablvs2"], "ipvs.recheck", {"tgt_type": "list", "kwarg": {"addresses": addresses}})]
    acted = [r for r in results.values() if r["acted"]]
    assert len(acted) == 1 and acted[0]["addresses"] == addresses


def test_a_report_its_director_withdrew_within_the_window_costs_no_job(master):
    """lablvs1 says labfe2 is down, then up again 2 s later (a TCG director starved of CPU saw its
    probes time out): when the down batch closes, lablvs1's last word is up; nobody is asked on
    the down claim, and the up claim is every director's (lablvs2 never said otherwise)."""
    results = {}

    def down():
        results["down"] = react.lvs_health(TAG, {"signer": "lablvs1"}, window=0.3)

    thread = threading.Thread(target=down)
    thread.start()
    time.sleep(0.1)
    results["up"] = react.lvs_health("hpc/lvs/health/10.12.0.22/up", {"signer": "lablvs1"}, window=0.05)
    thread.join()
    assert master["published"] == [], master["published"]
    assert results["down"]["reason"] == "withdrawn by its reporter" and results["down"]["withdrawn"] == ["10.12.0.22"]


def test_a_director_asked_to_recheck_is_asked_again_when_the_server_comes_back(master):
    """lablvs2's probes are off: asked to re-probe labfe2's death, its table says down; when
    lablvs1 reports labfe2 back, lablvs2 (whose verdict the master never heard) is asked again."""
    react.lvs_health(TAG, {"signer": "lablvs1"}, window=0.05)
    react.lvs_health("hpc/lvs/health/10.12.0.22/up", {"signer": "lablvs1"}, window=0.05)
    assert [p[0] for p in master["published"]] == [["lablvs2"], ["lablvs2"]]


def test_a_report_from_a_minion_that_is_no_director_is_refused_and_recorded(master):
    result = react.lvs_health(TAG, {"signer": "labcn2"}, window=0.1)
    assert result["acted"] is False and "labcn2 is not an LVS director" in result["reason"]
    assert master["published"] == []
    assert master["fired"][0][0] == react.REJECTED and master["fired"][0][1]["claimed"] == "labcn2"


# ---------------------------------------------------------------- load


LOAD_TAG = "hpc/lvs/load/{}"


@pytest.fixture
def pool(master, monkeypatch):
    """As the master's pillar cache has it: labfe[1-3] are the real servers, the example policy."""
    monkeypatch.setattr(react.hpc_reactor_memory, "REWEIGHERS", {})
    lvs = {"directors": "lablvs[1-2]", "load": {"min_interval": 30},
           "services": [{"real_servers": [{"host": f"labfe{i}"} for i in (1, 2, 3)]}]}
    monkeypatch.setattr(react, "_lvs_pillar", lambda minion: lvs)
    monkeypatch.setattr(react, "_directors", lambda minion: ["lablvs1", "lablvs2"])
    return master


def report_load(signer, per_core, batch=0.05):
    """As the reactor hands it over: the beacon's payload inside the master's envelope."""
    event = {"cmd": "_minion_event", "id": signer, "signer": signer, "data": {"per_core": per_core}}
    return react.lvs_load(LOAD_TAG.format(signer), event, batch=batch)


def test_a_loaded_frontend_gets_one_job_on_both_directors_and_a_steady_one_none(pool):
    assert report_load("labfe2", 0.2)["acted"]  # the first report: whatever the directors kept
    pool["published"].clear()
    assert report_load("labfe2", 0.2)["acted"] is False
    assert pool["published"] == []
    report_load("labfe3", 2.0)
    assert pool["published"] == [
        (["lablvs1", "lablvs2"], "ipvs.set_load", {"tgt_type": "list", "kwarg": {"loads": {"labfe3": 0.1}}})]


def test_frontends_that_move_together_share_one_job(pool):
    results = {}

    def one(host):
        results[host] = report_load(host, 2.0, batch=0.2)

    threads = [threading.Thread(target=one, args=(h,)) for h in ("labfe1", "labfe2", "labfe3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p[2]["kwarg"]["loads"] for p in pool["published"]] == [{"labfe1": 0.1, "labfe2": 0.1, "labfe3": 0.1}]


def test_a_load_report_from_a_host_outside_the_pool_is_refused_and_recorded(pool):
    result = report_load("labcn2", 5.0)
    assert result["acted"] is False and "labcn2 is not a real server of the login pool" in result["reason"]
    assert pool["published"] == [] and pool["fired"][0][1]["claimed"] == "labcn2"


def test_a_report_that_is_no_load_is_refused(pool):
    result = report_load("labfe2", "high")
    assert result["acted"] is False and result["reason"] == "per_core: not a load (got 'high')"
    assert pool["published"] == []
