"""The policy-routing planner beyond its plan cases (tests/unit/test_plans.py): applying a plan, uid ranges."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_plans import routing_state as state

import hpc_routing
from hpc_routing import Rule

CASES = Path(__file__).parent / "plans" / "policy_routing"


def test_applying_the_plan_to_the_fake_reaches_desired():
    from hpc_routing_kernel import FakeRouting, apply

    data = yaml.safe_load((CASES / "remove-only-what-we-own.yaml").read_text())
    fake = FakeRouting()
    actual = state(data["actual"])
    fake.tables, fake.rules = dict(actual.tables), set(actual.rules)
    fake.routes = {r.key(): r for r in actual.routes}
    desired = state(data["desired"])
    assert apply(fake, hpc_routing.plan(desired, fake.read({150, 201, 202, 254}))) == []
    assert hpc_routing.plan(desired, fake.read({201, 202})) == []
    assert Rule(90, 9, 150) in fake.rules and (254, "default") in fake.routes


@pytest.mark.parametrize(("uids", "ranges"), [
    ([], []),
    ([3001], [(3001, 3001)]),
    ([3003, 3001, 3002, 3005], [(3001, 3003), (3005, 3005)]),
    ({100, 3000, 3001}, [(100, 100), (3000, 3001)]),
])
def test_uid_ranges_cover_exactly_the_uids(uids, ranges):
    assert hpc_routing.uid_ranges(uids) == ranges


def test_rules_render_as_ip_rule_words():
    assert hpc_routing.render(Rule(100, 1, 201)) == "priority 100 fwmark 0x1 lookup 201"
    assert hpc_routing.render(Rule(100, 0, 201, (3001, 3005))) == "priority 100 uidrange 3001-3005 lookup 201"
