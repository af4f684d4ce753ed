"""Seed 003 in the lab: the chosen users' traffic leaves through the HA NAT router, everyone else's
by the default route, with no leak either way; an IB flap heals itself; a NAT failover keeps flows.

Real users (``runuser``) on labcn1 open real TCP connections; the gateways count what reaches them
(hpclab.paths). The policy comes from pillar/policy_routing.sls through the first highstate:
users aliprod, alise, rgrosso and group alice (alicepri has it as primary group, alicesup only as a
supplementary one) are marked; bob and root are not.
"""

from __future__ import annotations

import json

import pytest
from labtests import lab_cli

from hpclab import cluster, events, paths
from hpclab import salt as labsalt

pytestmark = pytest.mark.lab

NODE = "labcn1"
INTERNET = paths.INTERNET  # labinet1: reachable from ib only through the NAT routers
NAT_VIP_WAN = "10.12.0.30"  # the SNAT address, on the same VRRP instance as the gateway VIP
CHOSEN = ("aliprod", "alicepri", "alicesup")
OTHERS = ("bob", "root")


@pytest.fixture(scope="module")
def servers(lab, converged):
    paths.start_server(lab, "labinet1", (paths.CHOSEN_PORT, paths.OTHER_PORT))
    paths.start_server(lab, "labfw1", (paths.OTHER_PORT,))
    return lab


@pytest.mark.parametrize("user", CHOSEN)
def test_chosen_user_reaches_the_internet_masqueraded(servers, user):
    got = paths.connect_as(servers, NODE, user, INTERNET, paths.CHOSEN_PORT, 20)
    assert got == {"ok": 20, "failed": 0, "seen_as": [NAT_VIP_WAN]}  # SNAT to the VIP that moves


@pytest.mark.parametrize("user", OTHERS)
def test_other_user_takes_the_default_route_and_the_firewall_drops_it(servers, user):
    before = cluster.fw_drops(servers)
    got = paths.connect_as(servers, NODE, user, INTERNET, paths.OTHER_PORT, 2)
    assert got == {"ok": 0, "failed": 2, "seen_as": []}
    assert cluster.fw_drops(servers) >= before + 2  # labfw1 saw (and dropped) the SYNs from ib


def test_no_packet_leaks_either_way_across_1000_connections_each(servers):
    """Both close patterns: the client's last ACK from TIME_WAIT has no socket owner (LAB-NOTES:
    uidrange alone and a plain mark leak it); the ct mark restore must route it like the rest."""
    counts, results = paths.leak_experiment(servers, NODE, (CHOSEN[0], CHOSEN[2]), OTHERS, 500)
    for got in results:
        assert (got["ok"], got["failed"]) == (500, 0), got
    assert counts.chosen_via_default == 0, counts
    assert counts.other_via_nat == 0, counts
    # Each connection sends at least SYN, ACK, data, FIN, ACK: the counters saw the real traffic.
    assert counts.chosen_via_nat >= 1000 * 5, counts
    assert counts.other_via_default >= 1000 * 5, counts


def _table_routes(lab: cluster.Lab) -> str:
    return lab.exec(NODE, ["ip", "route", "show", "table", "201"])[1]


def _from(tag: str, reason: str | None = None):
    """An event of labcn1's with ``tag`` (and the heal's ``reason``), as the master received it."""
    def match(event: dict) -> bool:
        data = event["data"]
        return (event["tag"] == tag and data.get("id") == NODE
                and (reason is None or data["data"].get("reason") == reason))
    return match


def test_ib_flap_is_healed_without_human_action(servers):
    """seed 003's fault: an admin flap of ib0 drops table 201's routes. The beacon puts them back
    itself (local heal: its event says what it did), then the reactor's heal confirms with the
    link's tag as its reason: the 60 s schedule also re-applies, but sends no event, so it cannot
    pass this test for it."""
    lab = servers
    assert "default via 10.13.0.30 dev ib0" in _table_routes(lab)
    with events.watch(lab, "hpc/net/") as bus:
        assert lab_cli(lab, "flap", NODE, "ib0").returncode == 0
        link = bus.wait_for(_from("hpc/net/link/ib0/up"), 5)
        assert link, bus.seen()
        restored = bus.wait_for(_from("hpc/net/routes/restored", "hpc/net/link/ib0/up"), 10)
    assert restored, bus.seen()
    local = link["data"]["data"]["local"]
    assert local["errors"] == [] and "add route default via 10.13.0.30 dev ib0 table 201" in local["changes"]
    assert restored["data"]["data"]["errors"] == []
    assert "default via 10.13.0.30" in _table_routes(lab)
    got = paths.connect_as(lab, NODE, CHOSEN[0], INTERNET, paths.CHOSEN_PORT, 5)
    assert got == {"ok": 5, "failed": 0, "seen_as": [NAT_VIP_WAN]}


def test_a_heal_that_cannot_restore_the_routes_reports_failed(servers):
    """ib0 still down: the routes cannot go back (the gateway is unreachable), and the master is
    told so; once ib0 is up the beacon's event heals it."""
    lab = servers
    with events.watch(lab, "hpc/net/") as bus:
        assert lab.exec(NODE, ["ip", "link", "set", "ib0", "down"])[0] == 0
        try:
            lab.salt([NODE, "policy_routing.heal", "reason=by hand", "-t", "60"], timeout=120)
            failed = bus.wait_for(_from("hpc/net/routes/failed", "by hand"), 10)
        finally:
            assert lab.exec(NODE, ["ip", "link", "set", "ib0", "up"])[0] == 0
            lab.restore_default_route(NODE)  # the site's network setup would (see `lab flap`)
        restored = bus.wait_for(_from("hpc/net/routes/restored", "hpc/net/link/ib0/up"), 10)
    assert failed, bus.seen()
    assert any("default via 10.13.0.30" in e for e in failed["data"]["data"]["errors"]), failed
    assert restored, bus.seen()
    assert "default via 10.13.0.30" in _table_routes(lab)


def test_chosen_users_do_not_need_the_main_default_route(servers):
    """A real flap also takes the main table's default until the site's network setup restores
    it: the uidrange rules route the chosen users' connect() without it."""
    lab = servers
    assert lab.exec(NODE, ["ip", "route", "del", "default"])[0] == 0
    try:
        got = paths.connect_as(lab, NODE, CHOSEN[1], INTERNET, paths.CHOSEN_PORT, 5)
        assert got == {"ok": 5, "failed": 0, "seen_as": [NAT_VIP_WAN]}
    finally:
        lab.restore_default_route(NODE)


def _synced(lab: cluster.Lab, router: str, port: int) -> str:
    argv = ["conntrack", "-L", "-p", "tcp", "--dport", str(port), "--state", "ESTABLISHED"]
    return lab.exec(router, argv)[1]


def test_long_lived_flow_survives_losing_the_master_nat_router(servers):
    """labnat1 (priority 150) loses ib0's carrier: labnat2 takes both VIPs, and the flow it never
    saw start goes on, because conntrackd had already given it the connection and its SNAT."""
    lab = servers
    assert paths.vip_holders(lab) == ["labnat1"]
    result = paths.stream_as(lab, NODE, CHOSEN[1], INTERNET, paths.CHOSEN_PORT, seconds=8)
    assert paths.wait_until(lambda: f"dport={paths.CHOSEN_PORT}" in _synced(lab, "labnat2", paths.CHOSEN_PORT), 5)
    try:
        assert lab_cli(lab, "partition", "labnat1", "ib0").returncode == 0
        assert paths.wait_until(lambda: paths.vip_holders(lab) == ["labnat2"], 5)
        assert f"{NAT_VIP_WAN}/24" in lab.exec("labnat2", ["ip", "-4", "addr", "show", "eth1"])[1]
        assert paths.wait_until(lambda: paths.stream_result(lab, NODE, result) is not None, 30)
    finally:
        assert lab_cli(lab, "heal", "labnat1", "ib0").returncode == 0
        assert paths.wait_until(lambda: paths.vip_holders(lab) == ["labnat1"], 10)  # preempts back
    got = paths.stream_result(lab, NODE, result)
    assert got["error"] is None and got["echoed"] == got["sent"] > 300, got
    assert got["max_gap_s"] < 2.0, got  # the figure itself: make bench-nat-failover


def test_sub_second_vrrp_runs_at_nice_minus_20_on_both_nat_routers(servers):
    assert [paths.vrrp_nice(servers, h) for h in paths.NAT_ROUTERS] == [-20, -20]


def test_flow_survives_two_masters_for_a_moment(servers):
    """labnat1's VRRP process stalls for 0.4 s (a busy host misses its adverts): labnat2 takes the
    VIPs and the neighbours' caches, then gives them back. Packets of the flow went through labnat2
    meanwhile, so labnat1's window tracking would call the next ones invalid: un-NATed, the server
    answered them with a RST (seen in the lab); dropped, the flow stalls. Loose tracking keeps it."""
    lab = servers
    assert paths.vip_holders(lab) == ["labnat1"]
    before = paths.became_master(lab, "labnat2")
    result = paths.stream_as(lab, NODE, CHOSEN[0], INTERNET, paths.CHOSEN_PORT, seconds=4)
    assert paths.wait_until(lambda: f"dport={paths.CHOSEN_PORT}" in _synced(lab, "labnat2", paths.CHOSEN_PORT), 5)
    paths.stall_vrrp(lab, "labnat1", 0.4)
    assert paths.wait_until(lambda: paths.stream_result(lab, NODE, result) is not None, 30)
    assert paths.became_master(lab, "labnat2") == before + 1  # two masters did happen
    assert paths.wait_until(lambda: paths.vip_holders(lab) == ["labnat1"], 10)
    got = paths.stream_result(lab, NODE, result)
    assert got["error"] is None and got["echoed"] == got["sent"] > 100, got


EXTRA_ROUTE = "    - {table: alinat, to: 192.0.2.0/24, via: 10.13.0.30, dev: ib0}\n"


def _applied_at(lab: cluster.Lab) -> float:
    return lab.salt_json([NODE, "policy_routing.last_applied"])[NODE].get("applied_at", 0.0)


def test_a_pillar_edit_applied_by_a_highstate_is_never_undone(servers):
    """Add a route to the pillar, apply once: the minion's in-memory pillar stays the old one
    (Salt refreshes it only on saltutil.refresh_pillar), and the minute's re-apply and every heal
    ran with it, removing the route (issue 10, point 5). The minute's re-apply (what the
    hpc_refresh beacon runs), run now, and a real flap healed by beacon and reactor must keep
    the route."""
    lab = servers
    text = (labsalt.REPO / "pillar" / "policy_routing.sls").read_text()
    edited = text.replace("  marks:\n", EXTRA_ROUTE + "  marks:\n", 1)
    assert edited != text
    lab.set_pillar("policy_routing.sls", edited)
    try:
        applied = lab.salt_json([NODE, "state.apply", "policy_routing", "-t", "120"], timeout=300)
        assert all(s["result"] for s in applied[NODE].values()), applied
        assert "192.0.2.0/24 via 10.13.0.30" in _table_routes(lab)
        in_memory = lab.salt_json([NODE, "pillar.get", "policy_routing:routes"])[NODE]
        assert "192.0.2.0/24" not in json.dumps(in_memory)  # the premise: the minion's pillar is older
        beacons = lab.salt_json([NODE, "beacons.list", "return_yaml=False"])[NODE]
        assert {"function": "policy_routing.reapply"} in beacons["hpc_refresh"], beacons  # each minute
        before = _applied_at(lab)
        assert lab.salt_json([NODE, "policy_routing.reapply"])[NODE]["errors"] == []
        assert _applied_at(lab) > before
        assert "192.0.2.0/24 via 10.13.0.30" in _table_routes(lab)
        with events.watch(lab, "hpc/net/") as bus:
            lab.flap(NODE, "ib0")
            restored = bus.wait_for(_from("hpc/net/routes/restored", "hpc/net/link/ib0/up"), 15)
        assert restored, bus.seen()
        assert "192.0.2.0/24 via 10.13.0.30" in _table_routes(lab)
    finally:
        lab.set_pillar("policy_routing.sls", None)
        lab.salt([NODE, "state.apply", "policy_routing", "-t", "120"], timeout=300)
        lab.salt([NODE, "saltutil.refresh_pillar", "wait=True"])
    assert "192.0.2.0/24" not in _table_routes(lab)
