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


# ---------------------------------------------------------------- a director's table


def table(text):
    from hpc_ipvs import parse_rules

    return parse_rules(text)


TABLE = """-A -t 10.12.0.10:22 -s wlc -p 600
-a -t 10.12.0.10:22 -r 10.12.0.21:22 -g -w 1
-a -t 10.12.0.10:22 -r 10.12.0.22:22 -g -w 2
-a -t 10.12.0.10:22 -r 10.12.0.23:22 -g -w 3
-A -t 10.12.0.11:22 -s rr
-a -t 10.12.0.11:22 -r 10.12.0.22:22 -g -w 5
-a -t 10.12.0.11:22 -r 10.12.0.23:22 -g -w 5"""


def weights(tbl):
    return {r.key(): r.weight for r in tbl.reals}


def test_a_dead_real_server_gets_zero_in_every_service_it_is_in():
    from hpc_lvs_weights import Overrides, weighted

    got, problems = weighted(table(TABLE), Overrides().with_health("10.12.0.22", False, 1.0, "refused"))
    assert weights(got) == {
        "tcp 10.12.0.10:22 -> 10.12.0.21:22": 1, "tcp 10.12.0.10:22 -> 10.12.0.22:22": 0,
        "tcp 10.12.0.10:22 -> 10.12.0.23:22": 3,
        "tcp 10.12.0.11:22 -> 10.12.0.22:22": 0, "tcp 10.12.0.11:22 -> 10.12.0.23:22": 5}
    assert problems == [] and got.services == table(TABLE).services


def test_the_half_of_the_pool_is_counted_per_service():
    from hpc_lvs_weights import Overrides, weighted

    dead = Overrides().with_health("10.12.0.22", False, 1.0).with_health("10.12.0.23", False, 1.0)
    got, problems = weighted(table(TABLE), dead)
    w = weights(got)
    # 10.12.0.10: 1 of 3 may go (22 goes, 23 kept); 10.12.0.11: 1 of 2 (22 goes, 23 kept)
    assert (w["tcp 10.12.0.10:22 -> 10.12.0.22:22"], w["tcp 10.12.0.10:22 -> 10.12.0.23:22"]) == (0, 3)
    assert (w["tcp 10.12.0.11:22 -> 10.12.0.22:22"], w["tcp 10.12.0.11:22 -> 10.12.0.23:22"]) == (0, 5)
    assert len(problems) == 2 and problems[0].startswith("tcp 10.12.0.10:22: 10.12.0.23: probed dead but kept")


def test_health_back_up_restores_the_pillar_weight_and_the_record_round_trips():
    from hpc_lvs_weights import Overrides, weighted

    down = Overrides().with_health("10.12.0.22", False, 5.0, "timeout")
    assert Overrides.from_record(down.as_record()) == down
    again = down.with_health("10.12.0.22", False, 9.0, "refused")
    assert again.dead["10.12.0.22"] == {"since": 5.0, "detail": "timeout"}  # down since the first time
    back = down.with_health("10.12.0.22", True, 6.0)
    assert back.dead == {} and weights(weighted(table(TABLE), back)[0]) == weights(table(TABLE))


def test_a_drain_is_weight_zero_until_idle_then_the_real_server_leaves_the_table():
    from hpc_lvs_weights import Overrides, weighted

    drained = Overrides().with_drain("labfe2", ["10.12.0.22"], since=100.0, timeout=600)
    got = weights(weighted(table(TABLE), drained)[0])
    assert got["tcp 10.12.0.10:22 -> 10.12.0.22:22"] == 0 and got["tcp 10.12.0.11:22 -> 10.12.0.22:22"] == 0
    busy = drained.finish_drains({"10.12.0.22": 3}, now=200.0)
    assert busy.removed() == set()
    idle = busy.finish_drains({"10.12.0.22": 0}, now=201.0)
    assert idle.removed() == {"10.12.0.22"}
    assert not any(r.address == "10.12.0.22" for r in weighted(table(TABLE), idle)[0].reals)
    assert weights(weighted(table(TABLE), idle.without_drain("labfe2"))[0]) == weights(table(TABLE))


def test_a_drain_ends_at_its_timeout_whatever_the_connections_and_keeps_its_start():
    from hpc_lvs_weights import Overrides

    drained = Overrides().with_drain("labfe2", ["10.12.0.22"], since=100.0, timeout=60)
    assert drained.with_drain("labfe2", ["10.12.0.22"], 150.0, 600).drained["10.12.0.22"]["since"] == 100.0
    assert drained.finish_drains({"10.12.0.22": 5}, now=159.0).removed() == set()
    assert drained.finish_drains({"10.12.0.22": 5}, now=160.0).removed() == {"10.12.0.22"}


def test_active_connections_are_summed_per_address():
    from hpc_ipvs import Conns, Table
    from hpc_lvs_weights import active_by_address

    tbl = table(TABLE)
    with_conns = Table(tbl.services, tbl.reals, {"tcp 10.12.0.10:22 -> 10.12.0.22:22": Conns(2, 1),
                                                 "tcp 10.12.0.11:22 -> 10.12.0.22:22": Conns(1, 0)})
    assert active_by_address(with_conns) == {"10.12.0.21": 0, "10.12.0.22": 3, "10.12.0.23": 0}


def test_only_the_vips_this_director_holds_count_for_a_drain():
    from hpc_ipvs import Conns, Table
    from hpc_lvs_weights import active_by_address

    tbl = table(TABLE)
    with_conns = Table(tbl.services, tbl.reals, {"tcp 10.12.0.10:22 -> 10.12.0.22:22": Conns(2, 1),
                                                 "tcp 10.12.0.11:22 -> 10.12.0.22:22": Conns(1, 0)})
    assert active_by_address(with_conns, {"10.12.0.11"})["10.12.0.22"] == 1
    assert active_by_address(with_conns, set()) == {"10.12.0.21": 0, "10.12.0.22": 0, "10.12.0.23": 0}
