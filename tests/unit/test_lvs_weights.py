"""The login pool's weights from the pillar, health, drains and load (hpc_lvs_weights.effective)."""

from __future__ import annotations

from hpc_lvs_weights import effective

POOL = {"labfe1": 4, "labfe2": 4, "labfe3": 4, "labfe4": 4}


def test_the_pillar_weights_stand_when_all_is_well():
    assert effective(POOL).weights == POOL


def test_a_dead_frontend_gets_zero_and_a_drained_one_too():
    got = effective(POOL, dead={"labfe1"}, drained={"labfe2"})
    assert got.weights == {"labfe1": 0, "labfe2": 0, "labfe3": 4, "labfe4": 4} and got.problems() == []


def test_never_more_than_half_the_pool_out_automatically():
    got = effective(POOL, dead={"labfe1", "labfe2", "labfe3"})
    assert got.weights == {"labfe1": 0, "labfe2": 0, "labfe3": 4, "labfe4": 4}
    assert got.kept_despite_dead == ("labfe3",)
    assert "labfe3: probed dead but kept in the pool" in got.problems()[0]


def test_a_drain_counts_against_the_half_but_is_never_refused():
    got = effective(POOL, dead={"labfe1", "labfe2"}, drained={"labfe3", "labfe4"})
    assert got.weights == {"labfe1": 4, "labfe2": 4, "labfe3": 0, "labfe4": 0}
    assert got.kept_despite_dead == ("labfe1", "labfe2")


def test_load_scales_a_live_weight_but_never_to_zero():
    got = effective(POOL, dead={"labfe1"}, load={"labfe1": 0.5, "labfe2": 0.5, "labfe3": 0.01, "labfe4": 2.0})
    assert got.weights == {"labfe1": 0, "labfe2": 2, "labfe3": 1, "labfe4": 4}
