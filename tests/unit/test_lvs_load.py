"""From a frontend's load to its weight factor (hpc_lvs_load): the policy's curve, smoothing,
the dead-band and the rate limit, as the master's reactor applies them report by report."""

from __future__ import annotations

import pytest

import hpc_lvs_weights
from hpc_lvs_load import Policy, Reweigher

POLICY = Policy(low=0.5, high=2.0, min_factor=0.1, smoothing=1.0, deadband=0.1, min_interval=30)


@pytest.mark.parametrize(("per_core", "factor"), [(0.0, 1.0), (0.5, 1.0), (1.25, 0.55), (2.0, 0.1), (9.0, 0.1)])
def test_full_weight_up_to_low_min_factor_from_high_linear_between(per_core, factor):
    assert POLICY.factor(per_core) == factor


def test_the_first_report_sets_the_factor_whatever_the_directors_had():
    """After a master restart the directors may keep an old factor: the first report decides."""
    assert Reweigher(POLICY).observe("labfe2", 0.1, now=0) == 1.0


def test_a_small_move_is_left_alone_a_large_one_applied():
    weigher = Reweigher(POLICY)
    weigher.observe("labfe2", 1.25, now=0)  # 0.55
    assert weigher.observe("labfe2", 1.3, now=100) is None  # 0.52: inside the dead-band
    assert weigher.observe("labfe2", 1.5, now=200) == 0.4


def test_one_change_per_frontend_per_min_interval():
    weigher = Reweigher(POLICY)
    weigher.observe("labfe2", 1.25, now=0)
    assert weigher.observe("labfe2", 2.0, now=10) is None  # 10 s after the last change
    assert weigher.observe("labfe3", 2.0, now=10) == 0.1  # another frontend: its own clock
    assert weigher.observe("labfe2", 2.0, now=31) == 0.1


def test_an_idle_frontend_gets_its_whole_weight_back_even_from_inside_the_dead_band():
    weigher = Reweigher(POLICY)
    weigher.observe("labfe2", 0.6, now=0)  # 0.94
    assert weigher.observe("labfe2", 0.4, now=100) == 1.0


def test_smoothing_damps_a_single_spike():
    weigher = Reweigher(Policy(smoothing=0.25, min_interval=0))
    weigher.observe("labfe2", 0.2, now=0)  # 1.0
    assert weigher.observe("labfe2", 4.0, now=10) == 0.61  # smoothed 1.15, not 4.0 (factor 0.1)
    assert weigher.smoothed("labfe2") == pytest.approx(0.25 * 4.0 + 0.75 * 0.2)


def test_policy_from_the_pillar_section():
    assert Policy.from_pillar({"low": 1, "high": 3, "every": 10, "enabled": True}) == Policy(low=1.0, high=3.0)


def test_load_scales_a_weight_and_never_takes_a_frontend_out():
    got = hpc_lvs_weights.effective({"fe1": 100, "fe2": 100, "fe3": 1}, load={"fe1": 0.55, "fe3": 0.1})
    assert got.weights == {"fe1": 55, "fe2": 100, "fe3": 1}


def test_a_factor_of_one_is_not_kept_in_the_record():
    overrides = hpc_lvs_weights.Overrides().with_load(["10.12.0.22"], 0.5)
    assert overrides.load == {"10.12.0.22": 0.5}
    assert overrides.with_load(["10.12.0.22"], 1.0).load == {}


def test_a_frontend_that_stays_idle_costs_no_job():
    weigher = Reweigher(POLICY)
    assert weigher.observe("labfe2", 0.1, now=0) == 1.0
    assert [weigher.observe("labfe2", 0.1, now=t) for t in (60, 120)] == [None, None]
