"""The hpc_frontend_load beacon reads /proc/loadavg (here a file standing for it) every ``every``
seconds and reports the load per core, signed, when it moved or the heartbeat is due."""

from __future__ import annotations

import importlib.util
import os

import pytest
from testlib import ROOT

import hpc_signed

spec = importlib.util.spec_from_file_location("hpc_frontend_load", ROOT / "_beacons" / "hpc_frontend_load.py")
beacon = importlib.util.module_from_spec(spec)
spec.loader.exec_module(beacon)
CORES = len(os.sched_getaffinity(0))


@pytest.fixture
def frontend(tmp_path, keys, monkeypatch):
    sent = []
    beacon.__salt__ = {"event.send": lambda tag, data: sent.append((tag, data))}
    beacon.__opts__ = keys["opts"]["labcn1"]
    beacon._LAST.update(sampled=float("-inf"), sent=float("-inf"), per_core=None)
    clock = [1000.0]
    monkeypatch.setattr(beacon.time, "monotonic", lambda: clock[0])
    loadavg = tmp_path / "loadavg"
    return {"sent": sent, "clock": clock, "loadavg": loadavg,
            "config": [{"every": 10}, {"heartbeat": 60}, {"loadavg": str(loadavg)}]}


def load(frontend, load1: float, after: float):
    frontend["loadavg"].write_text(f"{load1:.2f} 0.50 0.40 2/300 4242\n")
    frontend["clock"][0] += after
    return beacon.beacon(frontend["config"])


def test_reports_its_load_per_core_signed_by_the_minion(frontend, keys):
    assert [e["per_core"] for e in load(frontend, 1.0, 0)] == [round(1.0 / CORES, 3)]
    tag, data = frontend["sent"][0]
    assert tag == "hpc/lvs/load/labcn1" and data["load1"] == 1.0 and data["cores"] == CORES
    assert hpc_signed.Verifier(keys["master_pki"]).verify(tag, data).minion == "labcn1"


def test_samples_every_n_seconds_and_reports_a_move_or_a_heartbeat(frontend):
    load(frontend, 1.0, 0)
    assert load(frontend, 3.0, 5) == []  # not 10 s yet: not even read
    assert len(load(frontend, 3.0, 5)) == 1  # 10 s: moved
    assert load(frontend, 3.0, 10) == []  # same load: nothing to say
    assert [len(load(frontend, 3.0, 10)) for _ in range(5)] == [0, 0, 0, 0, 1]  # 60 s: heartbeat
    assert len(frontend["sent"]) == 3


def test_a_bad_setting_is_named():
    assert beacon.validate([{"every": 0}]) == (False, "hpc_frontend_load: 'every' must be a number of seconds > 0")
    assert beacon.validate([{"every": 5}])[0] is True
