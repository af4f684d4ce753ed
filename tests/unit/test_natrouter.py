"""natrouter as data: the nft file and conntrackd.conf rendered per host, `nft -j` output parsed
into the model, and the plan between them.

The fixtures in data/natrouter/ are real: each NAME.nft was applied with `nft -f` in a throwaway
netns (nftables 1.0.6) and NAME.json is what `nft -j list table inet hpcnet_nat` printed then.
tests/functional/test_natrouter.py re-applies them and checks the recordings still hold.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testlib import example_pillar, mutate

import hpc_natrouter as nr
import hpc_pillar

DATA = Path(__file__).parent / "data" / "natrouter"


@pytest.fixture
def pillar():
    """The example pillar with seed 003's masquerade (no snat_address): what the recordings hold."""
    data = example_pillar()
    data["natrouter"].pop("snat_address", None)
    return data


def fixture(name: str) -> str:
    return (DATA / name).read_text()


def want(pillar, host="labnat1"):
    sections = hpc_pillar.load(pillar)
    return nr.desired(hpc_pillar.inventory(pillar)[host], sections["natrouter"], sections["networks"])


def conntrackd(pillar, host="labnat1"):
    sections, inventory = hpc_pillar.load(pillar), hpc_pillar.inventory(pillar)
    nat = sections["natrouter"]
    return nr.render_conntrackd(inventory[host], nr.routers(nat, inventory), nat)


def errors(pillar):
    return [str(e) for e in hpc_pillar.validate(pillar)]


# ---------------------------------------------------------------- rendering


def test_rendered_file_is_the_recorded_one_behind_a_header(pillar):
    text = nr.render_table(want(pillar))
    assert text.startswith(nr.HEADER + "\n")
    assert text[len(nr.HEADER) + 1:] == fixture("ours.nft").replace("    chain postrouting", "\n    chain postrouting")


def test_file_replaces_only_our_table(pillar):
    lines = nr.render_table(want(pillar)).splitlines()
    # Creating first makes the delete safe on a host without the table; no other table is named.
    assert lines[1:3] == ["table inet hpcnet_nat", "delete table inet hpcnet_nat"]
    assert {ln.split("{")[0].strip() for ln in lines if ln.startswith("table")} == {"table inet hpcnet_nat"}
    assert not any("flush" in ln for ln in lines)


def test_outside_gets_replies_only_and_nat_covers_the_inside_network_only(pillar):
    forward, post = want(pillar).chains
    assert (forward.policy, post.policy) == ("drop", "accept")
    assert [r.text() for r in forward.rules] == [
        "ct state invalid drop",  # an invalid packet is not NATed: it would leave with its inside address
        'iifname "ib0" oifname "eth1" accept',
        'iifname "eth1" oifname "ib0" ct state established,related accept']
    assert [r.text() for r in post.rules] == ['oifname "eth1" ip saddr 10.13.0.0/16 masquerade']


def test_snat_address_replaces_masquerade(pillar):
    post = want(mutate(pillar, "natrouter.snat_address", "10.12.0.35")).chain("postrouting")
    assert [r.text() for r in post.rules] == ['oifname "eth1" ip saddr 10.13.0.0/16 snat ip to 10.12.0.35']


def test_only_declared_hosts_are_routers(pillar):
    nat = hpc_pillar.load(pillar)["natrouter"]
    assert nr.is_router("labnat2", nat) and not nr.is_router("labcn1", nat)
    assert not nr.is_router("labnat1", None)


def test_sysctl_file_turns_forwarding_on_and_window_tracking_loose_with_sync(pillar):
    nat = hpc_pillar.load(pillar)["natrouter"]
    assert nr.render_sysctl(nat).splitlines()[1:] == [
        "net.ipv4.ip_forward = 1", "net.netfilter.nf_conntrack_tcp_be_liberal = 1"]
    assert nr.render_modules(nat).splitlines()[1:] == ["nf_conntrack"]
    alone = hpc_pillar.load(mutate(pillar, "natrouter.conntrack_sync", False))["natrouter"]
    assert nr.render_sysctl(alone).splitlines()[1:] == ["net.ipv4.ip_forward = 1"]
    assert nr.render_modules(alone) == ""


# ---------------------------------------------------------------- conntrackd.conf


def test_conntrackd_syncs_ftfw_unicast_to_the_other_router(pillar):
    one, two = conntrackd(pillar, "labnat1"), conntrackd(pillar, "labnat2")
    assert "    Mode FTFW {\n        DisableExternalCache yes\n    }" in one
    assert "IPv4_address 10.13.0.31\n        IPv4_Destination_Address 10.13.0.32\n" in one
    assert "IPv4_address 10.13.0.32\n        IPv4_Destination_Address 10.13.0.31\n" in two
    assert "        Interface ib0\n" in one and "Port 3780" in one


def test_conntrackd_ignores_the_routers_own_connections(pillar):
    sections, inventory = hpc_pillar.load(pillar), hpc_pillar.inventory(pillar)
    nat = sections["natrouter"]
    text = nr.render_conntrackd(inventory["labnat1"], nr.routers(nat, inventory), nat, vips=("10.13.0.30/16",))
    ignored = text.split("Address Ignore {")[1].split("}")[0].split()
    assert ignored[1::2] == ["127.0.0.1", "10.11.0.31", "10.12.0.31", "10.13.0.31", "10.13.0.30"]


def test_conntrackd_multicast_on_the_admin_network(pillar):
    data = mutate(mutate(pillar, "natrouter.sync_transport", "multicast"), "natrouter.sync_network", "admin")
    text = conntrackd(data)
    assert "Multicast {\n        IPv4_address 225.0.0.50\n        Group 3780\n" in text
    assert "IPv4_interface 10.11.0.31\n        Interface eth0\n" in text and "UDP {" not in text


def test_no_conntrackd_without_sync(pillar):
    assert conntrackd(mutate(pillar, "natrouter.conntrack_sync", False)) == ""


def test_conntrackd_paths_can_move(pillar):
    sections, inventory = hpc_pillar.load(pillar), hpc_pillar.inventory(pillar)
    nat = sections["natrouter"]
    text = nr.render_conntrackd(inventory["labnat1"], nr.routers(nat, inventory), nat,
                                nr.ConntrackdPaths("/tmp/x.lock", "/tmp/x.sock"))
    assert "LockFile /tmp/x.lock\n" in text and "Path /tmp/x.sock\n" in text


# ---------------------------------------------------------------- parsing recorded `nft -j` output


def test_recorded_table_parses_to_the_desired_model(pillar):
    assert nr.parse_table(fixture("ours.json")) == want(pillar)


def test_absent_table_is_none():
    assert nr.parse_table(None) is None and nr.parse_table("") is None


def test_single_ct_state_is_a_string_in_json():
    forward = nr.parse_table(fixture("other_chains.json")).chain("forward")
    assert forward.rules[1].ct_state == ("established",)


def test_rule_not_understood_is_kept_as_unknown():
    rules = nr.parse_table(fixture("extra_rule.json")).chain("forward").rules
    assert len(rules) == 4 and rules[3].unknown and "dport" in rules[3].unknown
    assert rules[3].text().startswith("# not understood")


def test_snat_parses(pillar):
    post = nr.parse_table(fixture("snat.json")).chain("postrouting")
    assert post.rules[0].verdict == "snat ip to 10.12.0.35" and post.rules[0].saddr == "10.13.0.0/16"


def test_other_tables_in_the_output_are_not_ours(pillar):
    doc = json.loads(fixture("ours.json"))
    foreign = [{"table": {"family": "ip", "name": "hpcnet_nat", "handle": 9}},
               {"chain": {"family": "ip", "table": "hpcnet_nat", "name": "forward", "handle": 1,
                          "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
               {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1,
                          "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}]
    doc["nftables"] += foreign
    assert nr.parse_table(doc) == want(pillar)
    assert nr.parse_table({"nftables": foreign}) is None


# ---------------------------------------------------------------- the plan (cases: tests/unit/plans/natrouter)


def test_update_carries_old_and_new_chain(pillar):
    (change,) = nr.plan(want(pillar), nr.parse_table(fixture("policy_accept.json")))
    data = change.as_data()
    assert (change.op, change.kind) == ("update", "chain")
    assert "policy accept;" in data["old"] and "policy drop;" in data["new"]


# ---------------------------------------------------------------- the pillar keys natrouter added


def test_example_pillar_is_valid_with_the_defaults(pillar):
    nat = hpc_pillar.load(pillar)["natrouter"]
    assert (nat.sync_network, nat.sync_transport, nat.sync_port, nat.snat_address) == (None, "udp", 3780, None)


@pytest.mark.parametrize("path, value, expected", [
    ("natrouter.sync_network", "storage",
     "natrouter.sync_network: is not a declared network (declared: admin, ib, wan) (got 'storage')"),
    ("natrouter.sync_group", "10.1.2.3", "natrouter.sync_group: is not a multicast address (got '10.1.2.3')"),
    ("natrouter.snat_address", "10.13.0.35", "natrouter.snat_address: is outside wan 10.12.0.0/24 (got '10.13.0.35')"),
    ("natrouter.sync_transport", "tcp", "natrouter.sync_transport: must be one of udp or multicast (got 'tcp')"),
])
def test_bad_natrouter_keys(pillar, path, value, expected):
    assert errors(mutate(pillar, path, value)) == [expected]


def test_udp_sync_needs_exactly_two_routers(pillar):
    data = mutate(mutate(pillar, "nodes.3.nodeset", "labnat[1-3]"), "natrouter.hosts", "labnat[1-3]")
    assert errors(data) == ["natrouter.sync_transport: udp syncs exactly 2 hosts, hosts has 3: use multicast "
                            "(got 'udp')"]
    assert errors(mutate(data, "natrouter.sync_transport", "multicast")) == []


def test_sync_network_every_router_must_be_on(pillar):
    data = mutate(pillar, "nodes.3.interfaces", {"ib": {"name": "ib0", "ip": "10.13.0.31"},
                                                 "wan": {"name": "eth1", "ip": "10.12.0.31"}})
    assert "natrouter.sync_network: host labnat1 has no interface on admin (got 'admin')" in errors(
        mutate(data, "natrouter.sync_network", "admin"))
