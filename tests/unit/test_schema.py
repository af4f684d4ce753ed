"""The pillar schema: the example is valid; each mistake is reported once, with key path and bad value."""

from __future__ import annotations

import pytest
from testlib import example_pillar, mutate

import hpc_context
import hpc_pillar

# (what is wrong, the change to the example pillar, the exact line expected)
MISTAKES = [
    ("address outside its network", ("nodes.4.interfaces.ib.ip", ["10.13.1.1", "10.99.0.1"]),
     "nodes[4].interfaces.ib.ip: labcn2's address is outside ib 10.13.0.0/16 (got '10.99.0.1')"),
    ("gateway outside its network", ("networks.wan.gateway", "10.99.0.1"),
     "networks.wan.gateway: is outside the network 10.12.0.0/24 (got '10.99.0.1')"),
    ("duplicate MAC across nodesets", ("nodes.5.interfaces.admin.mac", "52:54:00:0b:00:41"),
     "nodes[5].interfaces.admin.mac: duplicate MAC address, already used at nodes[4].interfaces.admin.mac "
     "(got '52:54:00:0b:00:41')"),
    ("duplicate IP across nodesets", ("nodes.5.interfaces.admin.ip", "10.11.0.42"),
     "nodes[5].interfaces.admin.ip: duplicate IP address, already used at nodes[4].interfaces.admin.ip "
     "(got '10.11.0.42')"),
    ("duplicate hostname across nodesets", ("nodes.5.nodeset", "labcn2"),
     "nodes[5].nodeset: host labcn2 is already declared by nodes[4] (got 'labcn2')"),
    ("VRID reused on one L2 network", ("keepalived.instances.1", {
        "name": "other", "vrid": 51, "network": "wan", "hosts": "labnat[1-2]",
        "virtual_ips": ["10.12.0.9/24"]}),
     "keepalived.instances[1].vrid: duplicate VRID on this L2 network, already used at "
     "keepalived.instances[0].vrid (got 51)"),
    ("VRRP priority out of range", ("keepalived.instances.0.priorities.lablvs1", 255),
     "keepalived.instances[0].priorities.lablvs1: must be 1..254 (got 255)"),
    ("sub-second advert with VRRPv2", ("keepalived.instances.1.vrrp_version", 2),
     "keepalived.instances[1].advert_int: below 1 s requires vrrp_version 3 (got 0.05)"),
    ("routing table id out of range", ("policy_routing.tables.0.id", 253),
     "policy_routing.tables[0].id: must be 1..252 (got 253)"),
    ("routing table name taken twice", ("policy_routing.tables", [{"id": 201, "name": "alinat"},
                                                                   {"id": 202, "name": "alinat"}]),
     "policy_routing.tables[1].name: duplicate table name, already used at policy_routing.tables[0].name "
     "(got 'alinat')"),
    ("fwmark used twice", ("policy_routing.marks.1", {"name": "cms", "fwmark": 1, "table": "alinat",
                                                      "priority": 101}),
     "policy_routing.marks[1].fwmark: duplicate fwmark, already used at policy_routing.marks[0].fwmark (got 1)"),
    ("scheduler the kernel lacks", ("lvs.services.0.scheduler", "fastest"),
     "lvs.services[0].scheduler: must be one of rr, wrr, lc, wlc, fo, ovf, lblc, lblcr, dh, sh, sed, nq, mh or twos "
     "(got 'fastest')"),
    ("weight out of range", ("lvs.services.0.real_servers.2.weight", -1),
     "lvs.services[0].real_servers[2].weight: must be 0..65535 (got -1)"),
    ("negative persistence", ("lvs.services.0.persistence", -5),
     "lvs.services[0].persistence: must be >= 0 (got -5)"),
    ("port out of range", ("lvs.services.0.port", 70000),
     "lvs.services[0].port: must be 1..65535 (got 70000)"),
    ("nodeset syntax", ("nodes.2.nodeset", "labfe[1-3"),
     "nodes[2].nodeset: is not a valid nodeset (missing bracket: \"labfe[1-3\") (got 'labfe[1-3')"),
    ("unknown frontend", ("lvs.services.0.real_servers.1.host", "labfe9"),
     "lvs.services[0].real_servers[1].host: is not a declared host (got 'labfe9')"),
    ("gateway outside every network", ("policy_routing.routes.1.via", "192.0.2.1"),
     "policy_routing.routes[1].via: is outside every declared network (got '192.0.2.1')"),
    ("unknown image", ("nodes.4.image", "gpu"),
     "nodes[4].image: is not a declared diskless image (declared: compute) (got 'gpu')"),
    ("unknown interface", ("policy_routing.routes.1.dev", "ib7"),
     "policy_routing.routes[1].dev: is not a declared interface of the routed hosts (declared: eth0, ib0) "
     "(got 'ib7')"),
    ("unknown network", ("keepalived.instances.0.network", "storage"),
     "keepalived.instances[0].network: is not a declared network (declared: admin, ib, wan) (got 'storage')"),
    ("unknown keepalived instance", ("natrouter.vrrp_instance", "nat"),
     "natrouter.vrrp_instance: is not a declared keepalived instance (declared: lvs_vip, nat_gw) (got 'nat')"),
    ("unknown key (typo)", ("lvs.services.0.persistance", 60),
     "lvs.services[0].persistance: is not a known key (got 60)"),
    ("hostname role differs from declared role", ("nodes.4.role", "fe"),
     "nodes[4].role: host labcn1 has role 'cn' in its name (got 'fe')"),
    ("DR with a port mapping", ("lvs.services.0.real_servers.0.port", 2222),
     "lvs.services[0].real_servers[0].port: a port mapping needs forward nat (this service is dr: the frontend "
     "gets port 22) (got 2222)"),
    ("login pool member that is not a frontend", ("frontend.hosts", "labfe[1-2]"),
     "lvs.services[0].real_servers[2].host: is not one of frontend.hosts (labfe[1-2]), the pool of lvs service "
     "ssh (got 'labfe3')"),
    ("fwmark service without its mark", ("lvs.services.0.protocol", "fwmark"),
     "lvs.services[0].fwmark: set it exactly when protocol is fwmark (got None)"),
    ("one-packet scheduling on tcp", ("lvs.services.0.flags", ["ops"]),
     "lvs.services[0].flags: ops (one-packet scheduling) is for udp or fwmark services (got ['ops'])"),
    ("scheduler flag of another scheduler", ("lvs.services.0.flags", ["sh-port"]),
     "lvs.services[0].flags: sh-port needs scheduler sh (this service has wlc) (got ['sh-port'])"),
    ("directors cannot reach the real servers' network", ("lvs.services.0.real_network", "ib"),
     "lvs.directors: director lablvs1 has no interface on ib (lvs.services[0] ssh) (got 'lablvs[1-2]')"),
    ("unknown real-server network", ("lvs.services.0.real_network", "storage"),
     "lvs.services[0].real_network: is not a declared network (declared: admin, ib, wan) (got 'storage')"),
    ("unknown forwarding method", ("lvs.services.0.forward", "masq"),
     "lvs.services[0].forward: must be one of nat, dr or tun (got 'masq')"),
    ("probe interval too short", ("lvs.health.interval", 0.01),
     "lvs.health.interval: must be >= 0.05 (got 0.01)"),
    ("connect timeout longer than the probe", ("lvs.health.connect_timeout", 2.0),
     "lvs.health.connect_timeout: must be <= timeout (0.5) (got 2.0)"),
    ("load threshold high below low", ("lvs.load.high", 0.4),
     "lvs.load.high: must be > low (0.5) (got 0.4)"),
    ("load may not take a frontend out", ("lvs.load.min_factor", 0),
     "lvs.load.min_factor: must be > 0.0 (got 0)"),
    ("NAT gateway on a direct-routing service", ("lvs.services.0.nat_gateway", "10.11.0.10"),
     "lvs.services[0].nat_gateway: only for forward nat (this service is dr) (got '10.11.0.10')"),
    ("NAT gateway that does not move with the VIP", ("lvs.services.1.nat_gateway", "10.11.0.11"),
     "lvs.services[1].nat_gateway: is no VRRP address of the directors on admin (add it to their keepalived "
     "instance: virtual_ips, or other_virtual_ips.admin) (got '10.11.0.11')"),
    ("a director in its own pool (seed 001's layout)", ("lvs.services.0.real_servers.0.host", "lablvs2"),
     "lvs.services[0].real_servers[0].host: is one of lvs.directors: a director does not serve its own pool "
     "(give the pool hosts of their own) (got 'lablvs2')"),
    ("NAT return table taken by policy routing", ("frontend.nat_return", {"table": 201}),
     "frontend.nat_return.table: is also policy_routing.tables[0] alinat (201) (got 201)"),
    ("boot override naming an unknown node", ("diskless.overrides.0.nodes", "labcn9"),
     "diskless.overrides[0].nodes: names hosts not declared in nodes: labcn9 (got 'labcn9')"),
    ("boot override that earlier ones shadow", ("diskless.overrides.1", {"nodes": "labcn2", "console": "tty0"}),
     "diskless.overrides[1].nodes: matches no node: earlier overrides take them all (the first override "
     "naming a node wins) (got 'labcn2')"),
    ("boot override with an unknown image", ("diskless.overrides.0.image", "gpu"),
     "diskless.overrides[0].image: is not a declared diskless image (declared: compute) (got 'gpu')"),
    ("overlay size the kernel cannot take", ("diskless.boot.overlay_size", "2 GB"),
     "diskless.boot.overlay_size: must be a size in K, M or G, like 512M or 2G (got '2 GB')"),
    ("pinned version that is no build name", ("diskless.images.0.version", "latest"),
     "diskless.images[0].version: must be a built version: <image>-<12 hex digits of its content hash> "
     "(got 'latest')"),
    ("discovery range outside the admin network",
     ("diskless.discovery", {"start": "10.12.0.150", "end": "10.11.0.199"}),
     "diskless.discovery.start: is not in the admin network (10.11.0.0/24) (got '10.12.0.150')"),
    ("discovery range that holds a declared node", ("diskless.discovery", {"start": "10.11.0.40", "end": "10.11.0.60"}),
     "diskless.discovery: the range 10.11.0.40-10.11.0.60 holds declared addresses (labcn1, labcn2) "
     "(got '10.11.0.40-10.11.0.60')"),
    ("discovery range backwards", ("diskless.discovery", {"start": "10.11.0.199", "end": "10.11.0.150"}),
     "diskless.discovery.end: comes before start (10.11.0.199) (got '10.11.0.150')"),
]


def test_example_pillar_is_valid(pillar):
    assert hpc_pillar.validate(pillar) == []


@pytest.mark.parametrize("what,change,expected", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_mistake_is_named_with_path_and_value(what, change, expected):
    errors = [str(e) for e in hpc_pillar.validate(mutate(example_pillar(), *change))]
    assert expected in errors, f"{what}: {errors}"


def test_every_mistake_is_reported_in_one_run():
    data = example_pillar()
    for _, change, _ in MISTAKES[6:9] + MISTAKES[11:15] + MISTAKES[17:19]:
        data = mutate(data, *change)
    lines = [str(e) for e in hpc_pillar.validate(data)]
    for _, _, expected in MISTAKES[6:9] + MISTAKES[11:15] + MISTAKES[17:19]:
        assert expected in lines


def test_missing_required_sections():
    lines = [str(e) for e in hpc_pillar.validate({})]
    assert lines == ["cluster: is required", "networks: is required", "nodes: is required"]


def test_nodeset_addresses_count_up_from_the_first(pillar):
    hosts = hpc_pillar.inventory(pillar)
    assert hosts["labfe3"].interfaces["wan"].ip == "10.12.0.23"
    assert hosts["labfe3"].interfaces["admin"].mac == "52:54:00:0b:00:23"
    assert len(hosts) == 14


def test_per_node_address_list_must_match_the_nodeset(pillar):
    data = mutate(pillar, "nodes.2.interfaces.wan.ip", ["10.12.0.21", "10.12.0.22"])
    assert ("nodes[2].interfaces.wan.ip: gives 2 values for the 3 nodes of labfe[1-3] (give 1, the first, or 3) "
            "(got ['10.12.0.21', '10.12.0.22'])") in [str(e) for e in hpc_pillar.validate(data)]


def test_load_raises_with_every_error(pillar):
    with pytest.raises(hpc_pillar.PillarInvalid) as info:
        hpc_pillar.load(mutate(pillar, "lvs.services.0.port", 0))
    assert "lvs.services[0].port: must be 1..65535 (got 0)" in str(info.value)


def test_modules_get_every_error_in_their_own_exception(pillar):
    class CommandError(Exception):
        pass

    with pytest.raises(CommandError) as info:
        hpc_context.build(mutate(pillar, "lvs.services.0.port", 0), "labcn1").require_valid(CommandError)
    assert str(info.value) == "invalid pillar:\nlvs.services[0].port: must be 1..65535 (got 0)"


def test_a_bad_host_key_is_named_and_never_printed(pillar):
    secret = "hunter2-not-a-key"
    lines = [str(e) for e in hpc_pillar.validate(dict(pillar, secrets={"ssh_host_keys": {"ed25519": secret}}))]
    assert lines == ["secrets.ssh_host_keys.ed25519: must be an OpenSSH private key (ssh-keygen's "
                     "-----BEGIN OPENSSH PRIVATE KEY----- block)"]
    assert secret not in "".join(lines)


def test_the_example_frontend_key_is_valid(pillar):
    import yaml
    from testlib import ROOT

    secrets = yaml.safe_load((ROOT / "pillar" / "secrets" / "frontend.sls").read_text())
    assert hpc_pillar.validate(dict(pillar, **secrets)) == []
