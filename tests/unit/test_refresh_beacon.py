"""The hpc_refresh beacon: when it runs its function, and that it never blocks or raises."""

from __future__ import annotations

import importlib.util
import random
import threading

from testlib import ROOT

spec = importlib.util.spec_from_file_location("hpc_refresh", ROOT / "_beacons" / "hpc_refresh.py")
refresh = importlib.util.module_from_spec(spec)
spec.loader.exec_module(refresh)


def runs(times, every=60, splay=20, seed=1):
    refresh._NEXT.clear()
    rng = random.Random(seed)
    return [t for t in times if refresh.due("policy_routing.reapply", t, every, splay, rng)]


def test_first_run_within_one_period_then_every_period_plus_splay():
    ran = runs(range(0, 400))
    assert ran and ran[0] <= 80
    gaps = [b - a for a, b in zip(ran, ran[1:], strict=False)]
    assert gaps and all(60 <= g <= 81 for g in gaps) and len(set(gaps)) > 1, gaps  # splayed


def test_a_first_run_asked_for_soon_comes_within_it():
    """A director that booted gets its IPVS table back within seconds, not within a period."""
    for seed in range(20):
        refresh._NEXT.clear()
        rng = random.Random(seed)
        ran = [t for t in range(0, 100) if refresh.due("ipvs.reapply", t, 60, 20, rng, first=5)]
        assert ran[0] <= 5 and all(b - a >= 60 for a, b in zip(ran, ran[1:], strict=False)), ran


def test_minions_started_together_spread_out():
    firsts = {runs(range(0, 200), seed=seed)[0] for seed in range(20)}
    assert len(firsts) > 10


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, fmt, *args):
        self.lines.append(fmt % args)

    def exception(self, fmt, *args):
        self.lines.append(fmt % args)


def test_the_beacon_calls_without_waiting_and_survives_a_failure(monkeypatch):
    calls, log = [], Log()
    monkeypatch.setattr(refresh, "log", log)

    def reapply(wait):
        calls.append(wait)
        if len(calls) == 2:
            raise RuntimeError("nft: boom")  # logged by log.exception with its traceback
        return {"changes": ["add route"], "errors": []}

    refresh.__salt__ = {"policy_routing.reapply": reapply}
    conf = [{"function": "policy_routing.reapply"}, {"every": 0}, {"splay": 0}]
    refresh._NEXT.clear()
    for _ in range(4):
        refresh._NEXT["policy_routing.reapply"] = 0  # due
        assert refresh.beacon(conf) == []
        for thread in threading.enumerate():
            if thread.name == "hpc_refresh:policy_routing.reapply":
                thread.join(5)
    assert calls == [False, False, False, False]
    assert log.lines.count("hpc_refresh: policy_routing.reapply failed") == 1
    assert log.lines.count("hpc_refresh: policy_routing.reapply: changes ['add route'], errors []") == 3


def test_validate_names_the_bad_setting():
    assert refresh.validate([{"function": "reapply"}])[0] is False
    assert refresh.validate([{"function": "policy_routing.reapply"}, {"every": -1}]) == \
        (False, "hpc_refresh: 'every' must be a number of seconds >= 0")
    assert refresh.validate([{"function": "policy_routing.reapply"}])[0] is True


def test_a_run_still_going_is_not_doubled(monkeypatch):
    release, calls = threading.Event(), []

    def slow(wait):
        calls.append(wait)
        release.wait(5)
        return {}

    refresh.__salt__ = {"policy_routing.reapply": slow}
    conf = [{"function": "policy_routing.reapply"}, {"every": 0}, {"splay": 0}]
    for _ in range(3):
        refresh._NEXT["policy_routing.reapply"] = 0
        refresh.beacon(conf)
    release.set()
    assert calls == [False]


def test_a_beacons_settings_read_the_same_in_list_and_dict_form():
    import hpc_beacons

    assert hpc_beacons.merged([{"function": "x.y"}, {"every": 5}, "marker", {"every": 6}]) == \
        {"function": "x.y", "every": 6}
    assert hpc_beacons.merged({"function": "x.y"}) == {"function": "x.y"}
