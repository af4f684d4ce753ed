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


def test_targets_are_each_real_servers_address_and_port_once_a_fwmark_one_on_22():
    from hpc_health import targets
    from hpc_ipvs import parse_rules

    reals = parse_rules("""-A -t 10.12.0.10:22 -s wlc
-a -t 10.12.0.10:22 -r 10.12.0.21:22 -g -w 1
-A -f 7 -s wlc
-a -f 7 -r 10.12.0.21:0 -g -w 1
-a -f 7 -r 10.12.0.22:0 -g -w 1""").reals
    assert targets(reals) == [("10.12.0.21", 22), ("10.12.0.22", 22)]


def test_a_recheck_acts_only_on_a_clear_verdict():
    from hpc_health import verdict

    assert verdict([False, False, False]) is False
    assert verdict([True, True, True]) is True
    assert verdict([True, False, True]) is None and verdict([]) is None
