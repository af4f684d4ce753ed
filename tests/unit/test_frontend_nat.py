"""The NAT return path of a real server (hpc_frontend_nat): what the example pillar's NAT service
(``ssh_nat``: the frontends reached on admin, nat_gateway 10.11.0.10) asks of each host, and the
plan that puts it in place beside policy routing's own rules."""

from __future__ import annotations

import pytest
from testlib import example_pillar, mutate

import hpc_frontend_nat
import hpc_pillar
from hpc_routing import DEFAULT, Route, RoutingState, Rule, plan
from hpc_schema import NatReturn


def _desired(host: str, pillar: dict | None = None) -> RoutingState:
    pillar = pillar or example_pillar()
    sections = hpc_pillar.load(pillar)
    fe = sections["frontend"].nat_return
    return hpc_frontend_nat.desired(hpc_pillar.inventory(pillar)[host], sections["lvs"], fe, sections["networks"])


def test_a_nat_real_server_sends_replies_from_its_admin_address_through_the_directors():
    assert _desired("labfe2") == RoutingState(
        {210: "lvs_nat"},
        frozenset({Rule(1000, 0, 210, (), "10.11.0.22/32")}),
        frozenset({Route(210, "10.11.0.0/24", None, "eth0"), Route(210, DEFAULT, "10.11.0.10", "eth0")}))


@pytest.mark.parametrize("host", ["lablvs1", "labcn1", "labadm1"])
def test_other_hosts_need_nothing(host):
    assert _desired(host) == RoutingState()


def test_without_a_nat_gateway_nothing_is_routed():
    """Seed 000's own layout: the director is the real servers' default gateway already."""
    assert _desired("labfe1", mutate(example_pillar(), "lvs.services.1.nat_gateway", None)) == RoutingState()


def test_two_services_that_disagree_on_the_way_back_are_refused():
    """(The pillar check refuses 10.11.0.12 already, as no VRRP address: the planner refuses on its own too.)"""
    lvs = hpc_pillar.load(example_pillar())["lvs"]
    lvs.services.append(lvs.services[1].model_copy(update={"name": "ssh_nat2", "nat_gateway": "10.11.0.12"}))
    host = hpc_pillar.inventory(example_pillar())["labfe1"]
    with pytest.raises(ValueError, match=r"ssh_nat and ssh_nat2: nat_gateway 10.11.0.10 and 10.11.0.12 "
                                         r"for one real server address \(labfe1 10.11.0.21\)"):
        hpc_frontend_nat.desired(host, lvs, NatReturn(), hpc_pillar.load(example_pillar())["networks"])


def test_the_first_apply_adds_the_table_the_routes_then_the_rule_and_leaves_policy_routing_alone():
    theirs = RoutingState({}, frozenset({Rule(100, 1, 201)}), frozenset({Route(201, DEFAULT, "10.13.0.30", "ib0")}))
    steps = [(c.op, c.kind, c.summary) for c in plan(_desired("labfe1"), theirs)]
    assert steps == [("add", "rt_tables", "rt_tables: 210 lvs_nat"),
                     ("add", "route", "10.11.0.0/24 dev eth0 table 210"),
                     ("add", "route", "default via 10.11.0.10 dev eth0 table 210"),
                     ("add", "rule", "priority 1000 from 10.11.0.21/32 lookup 210")]
