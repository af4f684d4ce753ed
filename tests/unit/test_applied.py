"""The record of what a subsystem last applied (hpc_applied) and the routing spec/state it keeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

from testlib import ROOT, example_pillar

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
    changes, errors = hpc_routing_kernel.restore_routes(handle, state)
    assert errors == [] and changes == ["add route default via 10.13.0.30 dev ib0 table 201"]
    assert hpc_routing_kernel.restore_routes(handle, state) == ([], [])


TAKE = ("import sys\nsys.path.insert(0, sys.argv[2])\nimport hpc_applied\n"
        "with hpc_applied.exclusive(sys.argv[1], wait=False) as held:\n    sys.exit(0 if held else 1)\n")


def test_a_process_forked_while_the_lock_is_held_does_not_keep_it(tmp_path):
    """Salt forks job processes from the minion while the beacon's thread may hold the lock. With
    flock the child shared it as long as it kept the inherited descriptor, and every later apply
    waited for ever (seen in the lab's storm). Here, once the parent lets go, others get it."""
    lock = tmp_path / "lock"
    read, write = os.pipe()
    with hpc_applied.exclusive(lock):
        child = os.fork()
        if child == 0:  # keeps every inherited descriptor until the test is done
            os.close(write)
            os.read(read, 1)
            os._exit(0)
    try:
        other = subprocess.run([sys.executable, "-c", TAKE, str(lock), str(ROOT / "_utils")], timeout=30)
        assert other.returncode == 0, "the forked child still holds the lock"
    finally:
        os.close(write)
        os.waitpid(child, 0)
        os.close(read)


def test_threads_of_one_process_exclude_each_other(tmp_path):
    lock, order = tmp_path / "lock", []

    def second():
        with hpc_applied.exclusive(lock):
            order.append("second")

    with hpc_applied.exclusive(lock):
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.2)
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"]


def test_a_child_forked_while_another_thread_holds_the_lock_can_take_it_later(tmp_path):
    """The beacon's thread holds the lock when Salt forks a heal job: once the minion lets go,
    the job must get it (a copied thread lock would keep it waiting for ever)."""
    lock, taken, release = tmp_path / "lock", threading.Event(), threading.Event()

    def beacon_thread():
        with hpc_applied.exclusive(lock):
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=beacon_thread)
    holder.start()
    taken.wait(10)
    child = os.fork()
    if child == 0:  # the heal job
        signal.alarm(10)
        with hpc_applied.exclusive(lock) as held:
            os._exit(0 if held else 1)
    release.set()
    holder.join(10)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked job never got the lock"


def test_restore_routes_adds_only_missing_routes_and_reads_nothing():
    handle = hpc_routing_kernel.FakeRouting()
    link = hpc_routing.Route(201, "10.13.0.0/16", None, "ib0")
    gateway = hpc_routing.Route(201, "default", "10.13.0.30", "ib0")
    handle.set_route(link, replace=False)
    state = hpc_routing.RoutingState({201: "alinat"}, frozenset(), frozenset({link, gateway}))
    assert hpc_routing_kernel.restore_routes(handle, state) == (
        ["add route default via 10.13.0.30 dev ib0 table 201"], [])
    assert hpc_routing_kernel.restore_routes(handle, state) == ([], [])
    broken = hpc_routing.RoutingState({}, frozenset(), frozenset({hpc_routing.Route(202, "default", None, "ib9")}))
    changes, errors = hpc_routing_kernel.restore_routes(handle, broken)
    assert changes == [] and errors == ["add route default dev ib9 table 202: interface ib9 does not exist"]
