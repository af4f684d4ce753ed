"""One suite for both routing handles: the dict fake and netlink in a throwaway network namespace."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from testlib import ROOT, netns_with_ib0

from hpc_routing import DEFAULT, Route, Rule
from hpc_routing_kernel import FakeRouting, NetlinkRouting


def _netns_handle(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the netlink handle needs root to create a network namespace")
    from pyroute2 import NetNS

    name = f"r{secrets.token_hex(2)}-routing"
    netns_with_ib0(name, "10.253.0.5/16")
    ipr = NetNS(name)
    return NetlinkRouting(rt_tables=tmp_path / "rt_tables.d" / "hpcnet.conf", ipr=ipr), name


@pytest.fixture(params=["fake", "netlink"])
def handle(request, tmp_path):
    if request.param == "fake":
        yield FakeRouting(links={"lo", "ib0", "ib0p"})
        return
    real, name = _netns_handle(tmp_path)
    try:
        yield real
    finally:
        real.close()
        subprocess.run(["ip", "netns", "del", name], check=True)


RULE = Rule(priority=100, fwmark=1, table=201)
UID_RULE = Rule(priority=100, fwmark=0, table=201, uids=(3001, 3005))
SRC_RULE = Rule(priority=1000, fwmark=0, table=201, src="10.253.0.5/32")  # a NAT real server's return path
ONLINK = Route(table=201, dst="10.253.0.0/16", dev="ib0")
DEFAULT_VIA = Route(table=201, dst=DEFAULT, gateway="10.253.0.30", dev="ib0")


def test_rules_and_routes_round_trip(handle):
    handle.write_tables({201: "alinat"})
    handle.add_rule(RULE)
    handle.add_rule(UID_RULE)
    handle.add_rule(SRC_RULE)
    handle.set_route(ONLINK, replace=False)
    handle.set_route(DEFAULT_VIA, replace=False)
    state = handle.read({201})
    assert state.tables == {201: "alinat"}
    assert state.rules == {RULE, UID_RULE, SRC_RULE}
    assert state.routes == {ONLINK, DEFAULT_VIA}


def test_replace_changes_a_route_in_place(handle):
    handle.set_route(ONLINK, replace=False)
    handle.set_route(DEFAULT_VIA, replace=False)
    moved = Route(table=201, dst=DEFAULT, gateway="10.253.0.31", dev="ib0")
    handle.set_route(moved, replace=True)
    assert handle.read({201}).routes == {ONLINK, moved}


def test_adding_twice_is_an_error(handle):
    handle.add_rule(RULE)
    with pytest.raises(FileExistsError):
        handle.add_rule(RULE)
    handle.set_route(ONLINK, replace=False)
    with pytest.raises(FileExistsError):
        handle.set_route(ONLINK, replace=False)


def test_deleting_what_is_not_there_is_an_error(handle):
    with pytest.raises(FileNotFoundError):
        handle.delete_rule(RULE)
    with pytest.raises(FileNotFoundError):
        handle.delete_route(ONLINK)


def test_delete(handle):
    handle.add_rule(RULE)
    handle.add_rule(UID_RULE)
    handle.add_rule(SRC_RULE)
    handle.set_route(ONLINK, replace=False)
    handle.delete_rule(UID_RULE)
    handle.delete_rule(SRC_RULE)
    assert handle.read({201}).rules == {RULE}
    handle.delete_rule(RULE)
    handle.delete_route(ONLINK)
    state = handle.read({201})
    assert not state.rules and not state.routes


def test_unknown_interface_is_refused(handle):
    with pytest.raises(LookupError):
        handle.set_route(Route(table=201, dst="10.9.0.0/16", dev="ib7"), replace=False)


def test_read_sees_only_the_tables_asked_for(handle):
    handle.add_rule(Rule(priority=90, fwmark=9, table=150))
    handle.set_route(Route(table=150, dst="10.253.0.0/16", dev="ib0"), replace=False)
    assert handle.read({201}).rules == frozenset() and handle.read({201}).routes == frozenset()


IN_OWN_NETNS = ("import sys\nsys.path.insert(0, sys.argv[1])\nfrom hpc_routing import Route\n"
                "from hpc_routing_kernel import NetlinkRouting\nhandle = NetlinkRouting()\n"
                "handle.set_route(Route(table=201, dst='10.253.0.0/16', dev='ib0'), replace=False)\n"
                "try:\n    handle.set_route(Route(table=201, dst='10.254.0.0/16', dev='ib9'), replace=False)\n"
                "except LookupError as exc:\n    print(exc)\n")


def test_the_handle_of_its_own_netns_names_interfaces_like_the_others():
    """The handle the minion uses (its own netns) resolves names locally, not through pyroute2:
    the route lands on the named interface, and an unknown one is the same LookupError."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    name = f"r{secrets.token_hex(2)}-own"
    netns_with_ib0(name, "10.253.0.5/16")
    try:
        out = subprocess.run(["ip", "netns", "exec", name, sys.executable, "-c", IN_OWN_NETNS, str(ROOT / "_utils")],
                             capture_output=True, text=True, timeout=60)
        routes = subprocess.run(["ip", "-n", name, "route", "show", "table", "201"], capture_output=True,
                                text=True, check=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "interface ib9 does not exist"
    assert routes.split()[:3] == ["10.253.0.0/16", "dev", "ib0"], routes


BOTH_PATHS = ("import sys\nsys.path.insert(0, sys.argv[1])\nfrom hpc_routing import Route\n"
              "from hpc_routing_kernel import NetlinkRouting\nhandle = NetlinkRouting()\n"
              "routes = [Route(201, '10.253.0.0/16', None, 'ib0'), Route(201, 'default', '10.253.0.30', 'ib0'),\n"
              "          Route(1000, '192.0.2.0/24', '10.253.0.30', 'ib0')]\n"
              "if sys.argv[2] == 'raw':\n"
              "    print([type(e).__name__ for e in handle.add_routes(routes + [routes[0], Route(201, '10.9.0.0/16',"
              " None, 'ib9')])])\n"
              "else:\n"
              "    for route in routes:\n        handle.set_route(route, replace=False)\n")


def _routes_made(path: str) -> tuple[str, str]:
    name = f"r{secrets.token_hex(2)}-{path}"
    netns_with_ib0(name, "10.253.0.5/16")
    try:
        cmd = ["ip", "netns", "exec", name, sys.executable, "-c", BOTH_PATHS, str(ROOT / "_utils"), path]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        shown = subprocess.run(["ip", "-n", name, "-d", "route", "show", "table", "all"], capture_output=True,
                               text=True, check=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)
    ours = [line for line in shown.splitlines() if "table 201" in line or "table 1000" in line]
    return out.stdout.strip(), "\n".join(ours)


def test_routes_added_in_one_request_are_those_pyroute2_adds():
    """The local heal adds its routes through one raw rtnetlink request (hpc_rtnl): the kernel
    must hold exactly what the apply's pyroute2 calls make (protocol, scope, a table above 255),
    or the next plan would see a difference; and each route gets its own verdict."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    verdicts, raw = _routes_made("raw")
    _, made_by_pyroute2 = _routes_made("pyroute2")
    assert verdicts == "['NoneType', 'NoneType', 'NoneType', 'FileExistsError', 'LookupError']"
    assert raw == made_by_pyroute2 and raw.count("\n") == 2, (raw, made_by_pyroute2)
