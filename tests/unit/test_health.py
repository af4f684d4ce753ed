"""Rise/fall counts of the login pool's health (hpc_health.Tracker)."""

from __future__ import annotations

from hpc_health import Tracker


def run(tracker, results, target="fe1"):
    return [tracker.observe(target, ok) for ok in results]


def test_a_server_goes_down_after_fall_failures_in_a_row():
    assert run(Tracker(rise=2, fall=2), [True, False, False, False]) == [None, None, "down", None]


def test_one_bad_probe_among_good_ones_changes_nothing():
    assert run(Tracker(rise=2, fall=2), [False, True, False, True, False, True]) == [None] * 6


def test_it_comes_back_after_rise_successes_in_a_row():
    tracker = Tracker(rise=3, fall=1)
    assert run(tracker, [False, True, True, False, True, True, True]) == ["down", None, None, None, None, None, "up"]


def test_servers_are_tracked_apart():
    tracker = Tracker(rise=1, fall=1)
    assert tracker.observe("fe1", False) == "down"
    assert tracker.observe("fe2", True) is None
    assert tracker.up == {"fe1": False, "fe2": True}
