"""The hpc_link beacon's decisions, from netlink messages recorded during `ip link set ib0 down; up`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from testlib import ROOT

import hpc_link_events

spec = importlib.util.spec_from_file_location("hpc_link", ROOT / "_beacons" / "hpc_link.py")
beacon = importlib.util.module_from_spec(spec)
spec.loader.exec_module(beacon)
FLAP = json.loads((Path(__file__).parent / "data" / "netlink-ib0-flap.json").read_text())


def test_a_flap_is_seen_as_down_then_up():
    states = hpc_link_events.observe(FLAP, {"ib0"}, {})
    assert states["ib0"][0] == "down" and states["ib0"][-1] == "up"
    assert "ib0p" not in states


def test_a_settled_flap_fires_up_even_though_the_link_was_up_before():
    states = hpc_link_events.observe(FLAP, {"ib0"}, {})["ib0"]
    assert hpc_link_events.verdict(states, "up", "up") == {"state": "up", "flapped": True}


def test_down_fires_once_and_nothing_fires_without_a_change():
    assert hpc_link_events.verdict(["down"], "down", "up") == {"state": "down", "flapped": False}
    assert hpc_link_events.verdict(["down"], "down", "down") is None
    assert hpc_link_events.verdict(["up"], "up", "up") is None  # a carrier-only change keeps the routes


def test_a_lost_address_counts_as_a_flap():
    msgs = [{"event": "RTM_DELADDR", "index": 3}, {"event": "RTM_NEWADDR", "index": 3}]
    states = hpc_link_events.observe(msgs, {"ib0"}, {3: "ib0"})["ib0"]
    assert hpc_link_events.verdict(states, "up", "up") == {"state": "up", "flapped": True}


def test_config_validation():
    assert beacon.validate([{"interfaces": ["ib0"]}, {"debounce": 0.05}])[0] is True
    assert beacon.validate([{"debounce": 0.05}])[0] is False


def _module_copy():
    """A fresh copy of the beacon module, as Salt's loader makes after a sync; its listener
    thread only waits to be stopped (no event bus in a unit test)."""
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    copy.__opts__ = {}
    copy.Listener.run = lambda self: self.stopped.wait()
    return copy


def test_one_listener_per_process_across_calls_reloads_and_config_changes():
    first, second = _module_copy(), _module_copy()
    try:
        first.beacon([{"interfaces": ["lo"]}])
        [started] = first.listeners()
        first.beacon([{"interfaces": ["lo"]}])
        assert first.listeners() == [started]  # every tick: the same listener
        second.beacon([{"interfaces": ["lo"]}])  # the module was reloaded: its own code takes over
        started.join(2)
        [replaced] = second.listeners()
        assert replaced is not started and type(replaced) is second.Listener
        second.beacon([{"interfaces": ["lo"], "debounce": 0.1}])
        replaced.join(2)
        [reconfigured] = second.listeners()
        assert reconfigured.key == (("lo",), 0.1)
    finally:
        for thread in second.listeners():
            thread.stopped.set()
            thread.join(2)


def test_the_report_waits_while_a_crowd_of_tasks_is_runnable_and_no_longer_than_its_cap():
    slept = []
    busy = iter([9, 9, 5, 4, 1])  # runnable tasks, the reader included; crowd 4 (2 CPUs)
    waited = hpc_link_events.yield_to_runnable(0.2, 4, runnable=lambda: next(busy), sleep=slept.append)
    assert len(slept) == 3 and abs(waited - 0.03) < 1e-9  # 9, 9, 5 runnable: 4 others or more
    assert hpc_link_events.yield_to_runnable(0.2, 4, runnable=lambda: 4, sleep=slept.append) == 0.0
    slept.clear()
    assert hpc_link_events.yield_to_runnable(0.05, 4, runnable=lambda: 40, sleep=slept.append) >= 0.05
    assert len(slept) == 5


def test_runnable_tasks_reads_the_kernels_count(tmp_path):
    (tmp_path / "loadavg").write_text("0.52 0.61 0.70 3/412 98765\n")
    assert hpc_link_events.runnable_tasks(str(tmp_path / "loadavg")) == 3
    assert hpc_link_events.runnable_tasks() >= 1  # this very reader
