"""policy_routing's execution module on a real kernel: a throwaway network namespace standing in
for a compute node, with a private /etc (tools/private-etc) so rt_tables.d stays in the sandbox."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import subprocess
import sys
import time

import pytest
from testlib import ROOT, example_pillar, mutate, netns_with_ib0

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces")


@pytest.fixture
def node(tmp_path):
    """labcn1 in its own netns: lo, ib0 (10.13.1.1/16, a veth to a silent peer), no default route."""
    name = f"p{secrets.token_hex(2)}-cn1"
    try:
        netns_with_ib0(name, "10.13.1.1/16")
        pillar = mutate(example_pillar(), "policy_routing.marks.0.users", ["nobody", "aliprod"])
        pillar = mutate(pillar, "policy_routing.marks.0.groups", ["nogroup"])
        (tmp_path / "pillar.json").write_text(json.dumps(pillar))
        yield name, tmp_path / "pillar.json"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def call(node, function, *args):
    name, pillar = node
    cmd = [str(ROOT / "tools" / "private-etc"), "ip", "netns", "exec", name, sys.executable,
           str(ROOT / "tests" / "saltcall.py"), "labcn1", str(pillar), function, *args]
    env = dict(os.environ, PRIVATE_ETC_DIR=str(pillar.parent / "etc"))  # this node's /etc across calls
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


# A TCP connect to an address outside every network: "sent, no answer" once a SYN left, else errno.
PROBE = [sys.executable, "-c", (
    "import socket\n"
    "s=socket.socket(); s.settimeout(0.3)\n"
    "try: s.connect(('192.0.2.1', 9))\n"
    "except TimeoutError: print('sent, no answer')\n"
    "except OSError as e: print(e.errno)\n")]


def sh(node, *cmd, user=None):
    prefix = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups"] if user else []
    return subprocess.run(["ip", "netns", "exec", node[0], *prefix, *cmd], capture_output=True, text=True)


def test_apply_is_complete_idempotent_and_names_the_missing_user(node):
    first = call(node, "policy_routing.apply")
    assert first["errors"] == []
    assert "add rule priority 100 fwmark 0x1 lookup 201" in first["changes"]
    assert "add rule priority 100 uidrange 65534-65534 lookup 201" in first["changes"]  # nobody
    assert "add route default via 10.13.0.30 dev ib0 table 201" in first["changes"]
    created = [c for c in first["changes"] if c.startswith("add table inet hpcnet_mark: alice fwmark 0x1 uids [")]
    assert created and "65534]" in created[0]  # nobody, and every user whose primary group is nogroup
    assert first["missing"] == ["labcn1: user aliprod (mark alice) is not known on this host"]
    assert call(node, "policy_routing.apply")["changes"] == []
    rules = sh(node, "ip", "rule").stdout
    assert "100:\tfrom all fwmark 0x1 lookup 201" in rules


def test_marked_users_packets_take_table_201_and_others_do_not(node):
    """Which gateway a connection went to shows in the neighbour table (the ARP attempt) and in
    counters by mark on the way out: nobody (marked) -> 10.13.0.30, root -> the main default."""
    call(node, "policy_routing.apply")
    sh(node, "ip", "route", "add", "default", "via", "10.13.0.254", "dev", "ib0")  # the firewall stand-in
    counting = ("table inet probe {\n chain post {\n type filter hook postrouting priority 0;\n"
                " oifname ib0 meta mark 0x1 counter\n oifname ib0 meta mark 0 counter\n }\n}\n")
    subprocess.run(["ip", "netns", "exec", node[0], "nft", "-f", "-"], input=counting, text=True, check=True)

    def gateways_tried():
        return {line.split()[0] for line in sh(node, "ip", "neigh", "show", "dev", "ib0").stdout.splitlines()}

    assert sh(node, *PROBE).stdout.strip() == "sent, no answer"
    assert gateways_tried() == {"10.13.0.254"}
    sh(node, "ip", "neigh", "flush", "dev", "ib0")
    assert sh(node, *PROBE, user="nobody").stdout.strip() == "sent, no answer"
    assert gateways_tried() == {"10.13.0.30"}
    counters = json.loads(sh(node, "nft", "-j", "list", "table", "inet", "probe").stdout)
    marked, unmarked = [e["counter"]["packets"] for i in counters["nftables"] if "rule" in i
                        for e in i["rule"]["expr"] if "counter" in e]
    assert marked >= 1 and unmarked >= 1


def test_marked_users_connect_even_when_the_main_table_has_no_route(node):
    """An IB flap also takes the main table's default route; until the site's network setup puts
    it back, only the uidrange rule lets the chosen users' connect() find a route (the output hook
    that marks packets runs after that first lookup)."""
    call(node, "policy_routing.apply")
    assert "default" not in sh(node, "ip", "route", "show").stdout
    assert sh(node, *PROBE, user="nobody").stdout.strip() == "sent, no answer"
    assert "10.13.0.30" in sh(node, "ip", "neigh", "show", "dev", "ib0").stdout
    assert sh(node, *PROBE).stdout.strip() == "101"  # root: ENETUNREACH, as before


def test_link_flap_loses_routes_and_heal_restores_them(node):
    call(node, "policy_routing.apply")
    sh(node, "ip", "link", "set", "ib0", "down")
    sh(node, "ip", "link", "set", "ib0", "up")
    assert "default via" not in sh(node, "ip", "route", "show", "table", "201").stdout  # the GSI problem
    status = call(node, "policy_routing.status")
    assert status["in_sync"] is False
    healed = call(node, "policy_routing.heal", "reason=ib0 up")
    assert healed["ok"] is True and healed["errors"] == []
    assert "default via 10.13.0.30 dev ib0" in sh(node, "ip", "route", "show", "table", "201").stdout


def test_clean_removes_only_what_we_own(node):
    call(node, "policy_routing.apply")
    sh(node, "ip", "rule", "add", "priority", "90", "fwmark", "9", "lookup", "150")
    sh(node, "ip", "route", "add", "10.13.0.0/16", "dev", "ib0", "table", "150")
    subprocess.run(["ip", "netns", "exec", node[0], "nft", "add", "table", "inet", "site"], check=True)
    cleaned = call(node, "policy_routing.clean")
    assert cleaned["errors"] == []
    rules = sh(node, "ip", "rule").stdout
    assert "lookup 201" not in rules and "90:\tfrom all fwmark 0x9 lookup 150" in rules
    assert sh(node, "ip", "route", "show", "table", "201").stdout == ""
    assert "10.13.0.0/16 dev ib0" in sh(node, "ip", "route", "show", "table", "150").stdout
    tables = sh(node, "nft", "list", "tables").stdout
    assert "hpcnet_mark" not in tables and "table inet site" in tables


def _held_by_another(path: str) -> bool:
    with open(path, "a") as fh:  # POSIX record locks, as hpc_applied.exclusive takes them
        try:
            fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(fh, fcntl.LOCK_UN)
        return False


def test_an_event_storm_costs_one_running_and_one_waiting_heal(node):
    """While a heal runs (here: this test holds the lock), the first heal to come waits; any
    later one returns at once, coalesced: the waiting one will see the kernel as it is then."""
    call(node, "policy_routing.apply")
    name, pillar = node
    with open("/run/hpcnet-policy-routing.lock", "a") as running:
        fcntl.lockf(running, fcntl.LOCK_EX)
        cmd = [str(ROOT / "tools" / "private-etc"), "ip", "netns", "exec", name, sys.executable,
               str(ROOT / "tests" / "saltcall.py"), "labcn1", str(pillar), "policy_routing.heal"]
        env = dict(os.environ, PRIVATE_ETC_DIR=str(pillar.parent / "etc"))
        waiting = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while not _held_by_another("/run/hpcnet-policy-routing.waiting"):
            assert time.monotonic() < deadline and waiting.poll() is None
            time.sleep(0.05)
        later = call(node, "policy_routing.heal")
        assert later["coalesced"] is True and later["applied"] is False
        assert waiting.poll() is None  # still queued behind the lock
    out, _ = waiting.communicate(timeout=60)
    first = json.loads(out.splitlines()[-1])
    assert first["coalesced"] is False and first["ok"] is True


EXTRA = {"table": "alinat", "to": "192.0.2.0/24", "via": "10.13.0.30", "dev": "ib0"}


def _with_extra_route(node):
    """The pillar file of ``node`` gains a route; returns the old pillar (to go back to it)."""
    before = json.loads(node[1].read_text())
    node[1].write_text(json.dumps(mutate(before, "policy_routing.routes.2", EXTRA)))
    return before


def test_reapply_keeps_what_the_last_apply_applied_not_an_older_pillar(node):
    """The schedule runs reapply with the minion's in-memory pillar, older than the last
    highstate's: the route that highstate added must stay (issue 10, point 5)."""
    call(node, "policy_routing.apply")
    older = _with_extra_route(node)
    assert "add route 192.0.2.0/24 via 10.13.0.30 dev ib0 table 201" in call(node, "policy_routing.apply")["changes"]
    node[1].write_text(json.dumps(older))  # the schedule's stale pillar
    assert call(node, "policy_routing.reapply")["changes"] == []
    assert "192.0.2.0/24 via 10.13.0.30" in sh(node, "ip", "route", "show", "table", "201").stdout
    assert call(node, "policy_routing.last_applied")["source"] == "record"
    healed = call(node, "policy_routing.heal")  # the reactor's heal: the same record
    assert healed["ok"] and "192.0.2.0/24 via 10.13.0.30" in sh(node, "ip", "route", "show", "table", "201").stdout
    assert "delete route 192.0.2.0/24 via 10.13.0.30 dev ib0 table 201" in \
        call(node, "policy_routing.apply")["changes"]  # an explicit apply of the older pillar wins


def test_clean_is_recorded_so_nothing_puts_it_back(node):
    call(node, "policy_routing.apply")
    call(node, "policy_routing.clean")
    assert call(node, "policy_routing.reapply")["changes"] == []
    assert sh(node, "ip", "route", "show", "table", "201").stdout == ""


LOCAL_HEAL = ("import json, sys\nsys.path.insert(0, sys.argv[1])\nimport hpc_routing_kernel\n"
              "print(json.dumps(hpc_routing_kernel.heal_from_record(sys.argv[2])))\n")


def local_heal(node):
    """hpc_routing_kernel.heal_from_record in the node's netns, with its private /etc."""
    name, pillar = node
    cmd = [str(ROOT / "tools" / "private-etc"), "ip", "netns", "exec", name, sys.executable, "-c", LOCAL_HEAL,
           str(ROOT / "_utils"), str(pillar.parent / "cache")]
    env = dict(os.environ, PRIVATE_ETC_DIR=str(pillar.parent / "etc"))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_local_heal_puts_the_routes_of_the_last_apply_back_without_salt(node):
    """What the hpc_link beacon runs on link up, without the master: the last applied routes,
    from the record, in the kernel; the pillar is not read (here: it no longer has the route)."""
    assert local_heal(node) is None  # nothing applied yet
    older = _with_extra_route(node)
    call(node, "policy_routing.apply")
    node[1].write_text(json.dumps(older))
    sh(node, "ip", "link", "set", "ib0", "down")
    sh(node, "ip", "link", "set", "ib0", "up")
    assert sh(node, "ip", "route", "show", "table", "201").stdout == ""
    healed = local_heal(node)
    assert healed["errors"] == [] and healed["seconds"] < 0.5
    assert "add route default via 10.13.0.30 dev ib0 table 201" in healed["changes"]
    routes = sh(node, "ip", "route", "show", "table", "201").stdout
    assert "default via 10.13.0.30 dev ib0" in routes and "192.0.2.0/24 via 10.13.0.30" in routes
