"""The record of what a subsystem last applied (hpc_applied) and the routing spec/state it keeps."""

from __future__ import annotations

import json
import os

from testlib import example_pillar

import hpc_applied
import hpc_routing
import hpc_routing_kernel
from hpc_schema import parse_sections


def test_save_then_load_round_trips_and_is_private(tmp_path):
    path = hpc_applied.save(tmp_path, "policy_routing", {"spec": {"routed": True}})
    assert hpc_applied.load(tmp_path, "policy_routing") == {"format": 1, "spec": {"routed": True}}
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["policy_routing.json"]  # no temp file left


def test_a_missing_unreadable_or_foreign_record_means_none(tmp_path):
    assert hpc_applied.load(tmp_path, "policy_routing") is None
    path = hpc_applied.save(tmp_path, "policy_routing", {})
    path.write_text("{not json")
    assert hpc_applied.load(tmp_path, "policy_routing") is None
    path.write_text(json.dumps({"format": 99}))
    assert hpc_applied.load(tmp_path, "policy_routing") is None


def test_exclusive_without_wait_says_when_another_holds_it(tmp_path):
    lock = tmp_path / "lock"
    with hpc_applied.exclusive(lock) as held:
        assert held is not None
        with hpc_applied.exclusive(lock, wait=False) as second:
            assert second is None
    with hpc_applied.exclusive(lock, wait=False) as again:
        assert again is not None


def test_the_spec_survives_json_and_the_state_round_trips():
    section = parse_sections(example_pillar()).sections["policy_routing"]
    spec = hpc_routing.spec(section, routed=True)
    assert json.loads(json.dumps(spec)) == spec
    assert spec["tables"] == {"alinat": 201}
    assert [201, "default", "10.13.0.30", "ib0"] in spec["routes"]
    assert hpc_routing.spec(section, routed=False)["routed"] is False
    state = hpc_routing.RoutingState({201: "alinat"}, frozenset({hpc_routing.Rule(100, 1, 201, (65534, 65534))}),
                                     frozenset({hpc_routing.Route(201, "default", "10.13.0.30", "ib0")}))
    assert hpc_routing.state_from_data(json.loads(json.dumps(hpc_routing.state_as_data(state)))) == state


def test_restore_puts_back_only_what_the_state_lacks():
    handle = hpc_routing_kernel.FakeRouting()
    route = hpc_routing.Route(201, "default", "10.13.0.30", "ib0")
    state = hpc_routing.RoutingState({201: "alinat"}, frozenset({hpc_routing.Rule(100, 1, 201)}), frozenset({route}))
    handle.write_tables(state.tables)
    handle.add_rule(hpc_routing.Rule(100, 1, 201))
    changes, errors = hpc_routing_kernel.restore(handle, state)
    assert errors == [] and changes == ["add route default via 10.13.0.30 dev ib0 table 201"]
    assert hpc_routing_kernel.restore(handle, state) == ([], [])
