"""The policy-routing planner, tested as data: tests/unit/plans/policy_routing/*.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import hpc_routing
from hpc_routing import Route, RoutingState, Rule

CASES = sorted((Path(__file__).parent / "plans" / "policy_routing").glob("*.yaml"))


def state(data: dict) -> RoutingState:
    return RoutingState(
        tables={int(k): v for k, v in (data.get("tables") or {}).items()},
        rules=frozenset(Rule(**r) for r in data.get("rules") or []),
        routes=frozenset(Route(**r) for r in data.get("routes") or []),
    )


def expected(changes: list[dict]) -> list[dict]:
    for change in changes:
        if change["kind"] == "table":
            change["target"] = {int(k): v for k, v in change["target"].items()}
    return changes


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_plan(case):
    data = yaml.safe_load(case.read_text())
    changes = hpc_routing.plan(state(data["desired"]), state(data["actual"] or {}))
    assert hpc_routing.as_data(changes) == expected(data["changes"])


def test_applying_the_plan_to_the_fake_reaches_desired():
    from hpc_routing_kernel import FakeRouting, apply

    data = yaml.safe_load((CASES[0].parent / "remove-only-what-we-own.yaml").read_text())
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
