"""The shared core: one pillar context per run (hpc_context) and one state shape (hpc_change.converge)."""

from __future__ import annotations

import logging

import pytest
from testlib import mutate

import hpc_context
from hpc_change import Change, converge, converge_recorded

# ---------------------------------------------------------------- the pillar context


def test_memberships_of_the_example_hosts(pillar):
    member = {host: hpc_context.build(pillar, host).member for host in ("labnat1", "labcn1", "lablvs2", "labboot1")}
    assert member["labnat1"]["natrouter"] and member["labnat1"]["keepalived"] == ["nat_gw"]
    assert not member["labnat1"]["policy_routing"] and not member["labnat1"]["frontend"]
    assert member["labcn1"]["policy_routing"] and member["labcn1"]["watched_interfaces"] == ["ib0"]
    assert member["lablvs2"]["director"] and member["lablvs2"]["keepalived"] == ["lvs_vip"]
    assert member["labboot1"]["boot_server"] and not member["labcn1"]["boot_server"]


def test_a_bad_pillar_has_no_memberships_and_says_why(pillar):
    ctx = hpc_context.build(mutate(pillar, "natrouter.sync_port", 0), "labnat1")
    assert not ctx.valid and ctx.member == {}
    assert ctx.mistakes() == ["natrouter.sync_port: must be 1..65535 (got 0)"]
    data = ctx.as_data()
    assert data["valid"] is False and data["member"] == {} and data["errors"] == ctx.mistakes()


def test_a_minion_the_pillar_forgets_is_named(pillar):
    ctx = hpc_context.build(pillar, "labcn9")
    assert not ctx.valid and ctx.member == {}
    assert ctx.mistakes() == ["nodes: minion labcn9 is not declared in any nodeset (got 'labcn9')"]


def test_require_valid_raises_the_given_error_with_every_mistake(pillar):
    bad = mutate(mutate(pillar, "natrouter.sync_port", 0), "lvs.services.0.port", 70000)
    with pytest.raises(LookupError, match=r"(?s)invalid pillar:.*lvs\.services\[0\]\.port.*natrouter\.sync_port"):
        hpc_context.build(bad, "labnat1").require_valid(LookupError)


def test_one_validation_per_pillar_per_run(pillar, caplog):
    store: dict = {}
    with caplog.at_level(logging.DEBUG, logger="hpc_context"):
        first = hpc_context.cached(store, pillar, "labcn1")
        for _ in range(20):  # every map.jinja and module function of a highstate asks again
            assert hpc_context.cached(store, dict(pillar), "labcn1") is first
        edited = hpc_context.cached(store, mutate(pillar, "node.resolver.timeout", 2), "labcn1")
    assert edited is not first  # a refreshed pillar is validated again
    assert sum("hpc: validated the pillar" in r.getMessage() for r in caplog.records) == 2


def test_the_digest_ignores_key_order(pillar):
    reordered = dict(reversed(list(pillar.items())))
    assert hpc_context.digest(reordered) == hpc_context.digest(pillar)


def test_as_data_is_a_copy(pillar):
    ctx = hpc_context.build(pillar, "labnat1")
    ctx.as_data()["member"]["keepalived"].append("x")
    assert ctx.as_data()["member"]["keepalived"] == ["nat_gw"]


# ---------------------------------------------------------------- the one state shape


class Host:
    """A host whose objects the plan is about: ``want`` vs ``have``; ``broken`` ones fail to apply."""

    def __init__(self, want: set[str], have: set[str], broken: frozenset[str] = frozenset()) -> None:
        self.want, self.have, self.broken, self.applied = want, set(have), broken, 0

    def plan(self) -> list[Change]:
        return ([Change("add", "thing", k, new=k) for k in sorted(self.want - self.have)]
                + [Change("delete", "thing", k, old=k) for k in sorted(self.have - self.want)])

    def apply(self, steps: list[Change]) -> list[str]:
        self.applied += 1
        failed = []
        for step in steps:  # Change objects, or their data when they came through __salt__
            op, key = (step["op"], step["key"]) if isinstance(step, dict) else (step.op, step.key)
            if key in self.broken:
                failed.append(f"{op} thing {key}: refused")
            elif op == "add":
                self.have.add(key)
            else:
                self.have.discard(key)
        return failed


def test_nothing_to_do_is_true_and_applies_nothing():
    host = Host({"a"}, {"a"})
    ret = converge("x", "things", host.plan, host.apply, test=False)
    assert (ret["result"], ret["changes"], host.applied) == (True, {}, 0)


def test_test_mode_is_none_with_the_plan_and_changes_nothing():
    host = Host({"a", "b"}, {"b", "c"})
    ret = converge("x", "things", host.plan, host.apply, test=True)
    assert ret["result"] is None and ret["changes"] == {"plan": ["add thing a", "delete thing c"]}
    assert host.have == {"b", "c"} and host.applied == 0


def test_apply_then_the_plan_is_empty():
    host = Host({"a", "b"}, {"b", "c"})
    ret = converge("x", "things", host.plan, host.apply, test=False)
    assert ret["result"] is True and ret["changes"] == {"applied": ["add thing a", "delete thing c"]}
    assert converge("x", "things", host.plan, host.apply, test=False)["changes"] == {}


def test_what_is_left_after_applying_is_false_and_not_reported_as_done():
    host = Host({"a", "b"}, set(), broken=frozenset({"b"}))
    ret = converge("x", "things", host.plan, host.apply, test=False)
    assert ret["result"] is False and ret["changes"] == {"applied": ["add thing a"]}
    assert "add thing b: refused" in ret["comment"] and "still differs after applying: add thing b" in ret["comment"]


def test_problems_are_reported_and_false_but_the_rest_applies():
    host = Host({"a"}, set())

    def plan():
        return {"changes": [c.as_data() for c in host.plan()], "problems": ["labcn1: user bob is not known"]}

    ret = converge("x", "things", plan, host.apply, test=False)
    assert ret["result"] is False and host.have == {"a"} and "user bob" in ret["comment"]
    again = converge("x", "things", plan, host.apply, test=False)
    assert again["result"] is False and again["changes"] == {}


def test_warnings_are_salts_warnings_and_leave_the_result_to_the_steps():
    host = Host({"a"}, set())
    unbuilt = ["no image built yet for labcn1: no boot menu"]

    def plan():
        return {"changes": [c.as_data() for c in host.plan()], "warnings": unbuilt}

    predicted = converge("x", "things", plan, host.apply, test=True)
    assert predicted["result"] is None and predicted["warnings"] == unbuilt and host.have == set()
    ret = converge("x", "things", plan, host.apply, test=False)
    assert ret["result"] is True and ret["changes"] == {"applied": ["add thing a"]}
    assert ret["warnings"] == unbuilt and "no image" not in ret["comment"]
    assert converge("x", "things", plan, host.apply, test=False)["warnings"] == unbuilt
    unbuilt.clear()  # built meanwhile: the latest plan's warnings only
    assert "warnings" not in converge("x", "things", plan, host.apply, test=False)


def test_declared_errors_become_false_with_their_message():
    def plan():
        raise LookupError("nft is not answering")

    ret = converge("x", "things", plan, lambda steps: [], test=False, errors=(LookupError,))
    assert ret["result"] is False and ret["comment"] == "things: nft is not answering"


def test_change_ops_are_checked():
    with pytest.raises(ValueError, match="op must be one of add, update, delete"):
        Change("replace", "route", "default table 201")


class Recording:
    """A subsystem whose apply records: ``pending`` steps to apply, ``applies`` counts the records."""

    def __init__(self, pending=(), drift_after_plan=()):
        self.pending, self.applies, self.drift = list(pending), 0, list(drift_after_plan)

    def plan(self):
        return list(self.pending)

    def apply(self):
        self.applies += 1
        done, self.pending = self.pending + self.drift, []
        self.drift = []
        return {"changes": done, "errors": []}


def test_nothing_to_change_still_records_once():
    sub = Recording()
    ret = converge_recorded("x", "thing", sub.plan, sub.apply, test=False)
    assert ret["result"] is True and not ret["changes"] and sub.applies == 1


def test_test_mode_never_records():
    sub = Recording()
    assert converge_recorded("x", "thing", sub.plan, sub.apply, test=True)["result"] is True
    assert sub.applies == 0


def test_changes_are_recorded_by_the_apply_itself():
    sub = Recording(pending=["add a"])
    ret = converge_recorded("x", "thing", sub.plan, sub.apply, test=False)
    assert ret["changes"] == {"applied": ["add a"]} and sub.applies == 1


def test_what_moved_between_the_plan_and_the_record_is_said():
    sub = Recording(drift_after_plan=["add b"])  # someone changed the host after our read
    ret = converge_recorded("x", "thing", sub.plan, sub.apply, test=False)
    assert ret["changes"] == {"applied": ["add b"]} and ret["result"] is True
