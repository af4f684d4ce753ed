"""Checks that span fields and sections: addresses in their networks, no duplicates,
unique VRIDs, tables and marks, and every reference pointing at something declared.

Each check takes the parsed sections (only those that parsed) and the inventory,
and returns PillarErrors; a section that failed to parse is simply skipped.
"""

from __future__ import annotations

import functools
import re
import socket
from collections.abc import Callable, Iterable
from typing import Any

import netaddr

from hpc_inventory import Host, expand_groups
from hpc_schema import ANY_HOST, Parsed, PillarError, join_path
from hpc_types import expand

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

Inventory = dict[str, Host] | None  # None: nodes did not parse, so host references go unchecked
RESERVED_TABLES = {"local", "main", "default", "unspec"}


def items(seq: list) -> list[tuple[int, Any]]:
    """(index, item) of the items that parsed; a bad item is None and was reported already."""
    return [(i, x) for i, x in enumerate(seq) if x is not None]


def _in(ip: str, cidr: str) -> bool:
    """The address (a prefix length after it is ignored) is inside the network, as netaddr says."""
    version, value = _address(ip.split("/")[0])
    net_version, first, last = _network(cidr)
    return version == net_version and first <= value <= last


@functools.lru_cache(maxsize=256)
def _network(cidr: str) -> tuple[int, int, int]:
    """(version, first, last) of a network: parsed once, however many hosts are checked against it."""
    net = netaddr.IPNetwork(cidr)
    return net.version, net.first, net.last


def _address(ip: str) -> tuple[int, int]:
    """(version, value) of an address; the plain forms the schema writes without netaddr's cost per host."""
    for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
        try:
            return version, int.from_bytes(socket.inet_pton(family, ip), "big")
        except OSError:
            continue
    addr = netaddr.IPAddress(ip)
    return addr.version, addr.value


@functools.lru_cache(maxsize=1024)
def _expand(nodeset: str) -> tuple[str, ...]:
    """A nodeset's names, expanded once per check (``check`` empties the cache): the same nodeset
    is often named by several sections."""
    return tuple(expand(nodeset))


def _unknown_hosts(path: str, nodeset: str, inventory: Inventory) -> list[PillarError]:
    if inventory is None:
        return []
    missing = [name for name in _expand(nodeset) if name not in inventory]
    if not missing:
        return []
    return [PillarError(path, f"names hosts not declared in nodes: {', '.join(missing)}", nodeset,
                        refs=tuple(missing), ref_kind="host")]


def _unknown(path: str, value: Any, known: Iterable[str], what: str) -> list[PillarError]:
    """``known``: a dict or set (an index: one lookup), or a short list; the hint is built on error only."""
    if known is None:
        return []
    if value is None or value in known:
        return []
    hint = f" (declared: {', '.join(sorted(known)) or 'none'})" if len(known) <= 12 else ""
    return [PillarError(path, f"is not a declared {what}{hint}", value,
                        refs=(value,), ref_kind=what)]


def _duplicates(items: Iterable[tuple[str, Any]], what: str, shown: Callable[[Any], Any] = lambda v: v,
                ) -> list[PillarError]:
    """Errors for every item whose key was already seen; items are (path, key), ``shown`` gives the value."""
    seen: dict[Any, str] = {}
    errors = []
    for path, value in items:
        if value in seen:
            errors.append(PillarError(path, f"duplicate {what}, already used at {seen[value]}", shown(value)))
        else:
            seen[value] = path
    return errors


def check_networks(s: dict, inv: Inventory) -> list[PillarError]:
    return [
        PillarError(join_path("networks", name, "gateway"), f"is outside the network {net.cidr}", net.gateway)
        for name, net in (s.get("networks") or {}).items()
        if net.gateway and not _in(net.gateway, net.cidr)
    ]


def check_nodes(s: dict, inv: Inventory) -> list[PillarError]:
    errors: list[PillarError] = []
    networks = s.get("networks")
    images = [i.name for _, i in items(s["diskless"].images)] if "diskless" in s else None
    for gi, group in items(s.get("nodes", [])):
        if networks is not None:
            for net in group.interfaces:
                errors += _unknown(join_path("nodes", gi, "interfaces", net), net, networks, "network")
        if group.image and images is not None:
            errors += _unknown(join_path("nodes", gi, "image"), group.image, images, "diskless image")
    hosts = sorted((inv or {}).values(), key=lambda h: h.group)
    outside: dict[tuple[int, str], list[Host]] = {}  # one mistake per group and network, however many hosts
    for host in hosts:
        for net, iface in host.interfaces.items():
            if networks and net in networks and not _in(iface.ip, networks[net].cidr):
                outside.setdefault((host.group, net), []).append(host)
    for (gi, net), bad in outside.items():
        who = f"{bad[0].name}'s address is" if len(bad) == 1 else f"{len(bad)} hosts' addresses ({bad[0].name}...) are"
        errors.append(PillarError(join_path("nodes", gi, "interfaces", net, "ip"),
                                  f"{who} outside {net} {networks[net].cidr}", bad[0].interfaces[net].ip))
    errors += _duplicates(((join_path("nodes", h.group, "interfaces", n, "ip"), i.ip)
                           for h in hosts for n, i in h.interfaces.items()), "IP address")
    errors += _duplicates(((join_path("nodes", h.group, "interfaces", n, "mac"), i.mac)
                           for h in hosts for n, i in h.interfaces.items() if i.mac), "MAC address")
    return errors + _check_roles(s, hosts)


def _check_roles(s: dict, hosts: list[Host]) -> list[PillarError]:
    """Hostnames follow <prefix><role><id> (seed 001): the role in the name is the declared role."""
    if "cluster" not in s:
        return []
    pattern = re.compile(s["cluster"].hostname_pattern)
    errors = []
    for host in hosts:
        match = pattern.match(host.name)
        path = join_path("nodes", host.group, "role")
        if not match:
            errors.append(PillarError(join_path("nodes", host.group, "nodeset"),
                                      f"host {host.name} does not match cluster.hostname_pattern", host.name))
        elif match.group("role") != host.role:
            errors.append(PillarError(path, f"host {host.name} has role {match.group('role')!r} in its name",
                                      host.role))
    return errors


def check_lvs(s: dict, inv: Inventory) -> list[PillarError]:
    lvs, networks = s.get("lvs"), s.get("networks")
    if lvs is None:
        return []
    errors = _unknown_hosts("lvs.directors", lvs.directors, inv) if lvs.directors else []
    errors += _duplicates(((join_path("lvs.services", i, "name"), svc.name) for i, svc in items(lvs.services)),
                          "service name")
    errors += _duplicates(((join_path("lvs.services", i, "port"), (svc.vip, svc.port, svc.protocol))
                           for i, svc in items(lvs.services) if svc.protocol != "fwmark"), "virtual service",
                          shown=lambda v: f"{v[0]}:{v[1]}/{v[2]}")
    errors += _duplicates(((join_path("lvs.services", i, "fwmark"), svc.fwmark)
                           for i, svc in items(lvs.services) if svc.protocol == "fwmark"), "fwmark service")
    for i, svc in items(lvs.services):
        path = join_path("lvs.services", i)
        errors += _unknown(join_path(path, "network"), svc.network, networks, "network")
        if networks and svc.network in networks and not _in(svc.vip, networks[svc.network].cidr):
            errors.append(PillarError(join_path(path, "vip"), f"is outside {svc.network} "
                                      f"{networks[svc.network].cidr}", svc.vip))
        if svc.real_network is not None:
            errors += _unknown(join_path(path, "real_network"), svc.real_network, networks, "network")
        directors = frozenset(_expand(lvs.directors)) if lvs.directors else frozenset()
        for j, real in items(svc.real_servers):
            errors += _real_server(join_path(path, "real_servers", j), svc, real, inv, networks or {}, directors)
        errors += _duplicates(((join_path(path, "real_servers", j, "host"), r.host)
                               for j, r in items(svc.real_servers)), "real server")
        errors += _nat_gateway(path, svc, lvs, s.get("keepalived"))
    if lvs.sync is not None:
        errors += _unknown("lvs.sync.network", lvs.sync.network, networks, "network")
    return errors + _directors_reach(lvs, inv, networks)


def _real_server(path: str, svc: Any, real: Any, inv: Inventory, networks: dict,
                 directors: frozenset[str] = frozenset()) -> list[PillarError]:
    errors = _unknown(join_path(path, "host"), real.host, inv, "host")
    # Seed 001 made its directors frontends too; we do not: a backup director with the VIP on lo
    # (DR) would send the master's packets on again, and IPVS delivering to the director's own
    # sshd is what made seed 001's conntrack call the SYN invalid (and open its firewall for it).
    if real.host in directors:
        errors.append(PillarError(join_path(path, "host"), "is one of lvs.directors: a director does not serve "
                                  "its own pool (give the pool hosts of their own)", real.host))
    # A network nobody declared is reported once, as such, not once per host.
    if inv and real.host in inv and svc.reals_on in networks and svc.reals_on not in inv[real.host].interfaces:
        errors.append(PillarError(join_path(path, "host"), f"has no interface on {svc.reals_on}, where the "
                                  "directors reach the real servers", real.host))
    # DR and tunnelling deliver the packet unchanged: the frontend sees the VIP's own port.
    if real.port is not None and real.port != svc.port and svc.forward != "nat":
        errors.append(PillarError(join_path(path, "port"), f"a port mapping needs forward nat (this service "
                                  f"is {svc.forward}: the frontend gets port {svc.port})", real.port))
    return errors


def _nat_gateway(path: str, svc: Any, lvs: Any, keepalived: Any) -> list[PillarError]:
    """A NAT service's gateway must move with its VIP: an address of a VRRP instance of the
    directors on the real servers' network. Any other address would send the replies to a host
    that cannot translate them back."""
    instances = keepalived.instances if keepalived is not None else []
    if svc.nat_gateway is None or None in instances:  # an invalid instance is reported as such, once
        return []
    directors = set(_expand(lvs.directors)) if lvs.directors else set()
    for inst in instances:
        if not directors & set(_expand(inst.hosts)):
            continue
        vips = (inst.virtual_ips if inst.network == svc.reals_on else []) + inst.other_virtual_ips.get(svc.reals_on, [])
        if any(v.split("/")[0] == svc.nat_gateway for v in vips):
            return []
    return [PillarError(join_path(path, "nat_gateway"), f"is no VRRP address of the directors on {svc.reals_on} "
                        "(add it to their keepalived instance: virtual_ips, or other_virtual_ips."
                        f"{svc.reals_on})", svc.nat_gateway)]


def _directors_reach(lvs: Any, inv: Inventory, networks: Any) -> list[PillarError]:
    """Every director has an interface on each service's VIP network and real-server network
    (a network nobody declared is reported once, as such)."""
    if not inv or not lvs.directors or not networks:
        return []
    errors = []
    for name in _expand(lvs.directors):
        if lvs.sync is not None and lvs.sync.network in networks and name in inv \
                and lvs.sync.network not in inv[name].interfaces:
            errors.append(PillarError("lvs.directors", f"director {name} has no interface on {lvs.sync.network} "
                                      "(lvs.sync.network)", lvs.directors))
        for i, svc in items(lvs.services):
            for net in dict.fromkeys((svc.network, svc.reals_on)):
                if name in inv and net in networks and net not in inv[name].interfaces:
                    errors.append(PillarError("lvs.directors", f"director {name} has no interface on {net} "
                                              f"(lvs.services[{i}] {svc.name})", lvs.directors))
    return errors


def check_keepalived(s: dict, inv: Inventory) -> list[PillarError]:
    ka, networks = s.get("keepalived"), s.get("networks")
    if ka is None:
        return []
    errors = _duplicates(((join_path("keepalived.instances", i, "name"), x.name)
                          for i, x in items(ka.instances)), "instance name")
    # VRRP adverts of one VRID collide on one L2 segment; a VLAN id names the segment when given.
    def segment(net: str) -> Any:
        vlan = networks[net].vlan if networks and net in networks else None
        return ("vlan", vlan) if vlan else ("net", net)
    errors += _duplicates(((join_path("keepalived.instances", i, "vrid"), (segment(x.network), x.vrid))
                           for i, x in items(ka.instances)), "VRID on this L2 network",
                          shown=lambda v: v[1])
    for i, inst in items(ka.instances):
        path = join_path("keepalived.instances", i)
        errors += _unknown(join_path(path, "network"), inst.network, networks, "network")
        errors += _unknown_hosts(join_path(path, "hosts"), inst.hosts, inv)
        members = _expand(inst.hosts)
        member_set = set(members)
        for host in inst.priorities:
            if host not in member_set:
                errors.append(PillarError(join_path(path, "priorities", host), "is not one of the instance's hosts",
                                          host))
        for name in members:
            if inv and name in inv and inst.network not in inv[name].interfaces:
                errors.append(PillarError(join_path(path, "hosts"), f"host {name} has no interface on "
                                          f"{inst.network}", inst.hosts))
        errors += _other_vips(path, inst, members, inv, networks)
        if networks and inst.network in networks:
            for j, vip in items(inst.virtual_ips):
                if not _in(vip, networks[inst.network].cidr):
                    errors.append(PillarError(join_path(path, "virtual_ips", j), f"is outside {inst.network} "
                                              f"{networks[inst.network].cidr}", vip))
    return errors


def _other_vips(path: str, inst: Any, members: Iterable[str], inv: Inventory, networks: dict | None,
                ) -> list[PillarError]:
    errors: list[PillarError] = []
    for net, vips in inst.other_virtual_ips.items():
        where = join_path(path, "other_virtual_ips", net)
        errors += _unknown(where, net, networks, "network")
        if not networks or net not in networks:
            continue
        errors += [PillarError(join_path(where, j), f"is outside {net} {networks[net].cidr}", vip)
                   for j, vip in enumerate(vips) if not _in(vip, networks[net].cidr)]
        errors += [PillarError(where, f"host {name} has no interface on {net}", net)
                   for name in members if inv and name in inv and net not in inv[name].interfaces]
    return errors


def check_policy_routing(s: dict, inv: Inventory) -> list[PillarError]:
    pr, networks = s.get("policy_routing"), s.get("networks")
    if pr is None:
        return []
    errors = _unknown_hosts("policy_routing.hosts", pr.hosts, inv) if pr.hosts else []
    tables = [t.name for _, t in items(pr.tables)]
    errors += _duplicates(((join_path("policy_routing.tables", i, "id"), t.id) for i, t in items(pr.tables)),
                          "table id")
    errors += _duplicates(((join_path("policy_routing.tables", i, "name"), t.name)
                           for i, t in items(pr.tables)), "table name")
    errors += [PillarError(join_path("policy_routing.tables", i, "name"), "is a name the kernel reserves", t.name)
               for i, t in items(pr.tables) if t.name in RESERVED_TABLES]
    ifnames = {i.name for h in _hosts(pr.hosts, inv) for i in h.interfaces.values()}
    for i, route in items(pr.routes):
        path = join_path("policy_routing.routes", i)
        errors += _unknown(join_path(path, "table"), route.table, tables, "table")
        if route.via and networks and not any(_in(route.via, n.cidr) for n in networks.values()):
            errors.append(PillarError(join_path(path, "via"), "is outside every declared network", route.via))
        if route.dev and inv:
            errors += _unknown(join_path(path, "dev"), route.dev, ifnames, "interface of the routed hosts")
    marks = pr.marks
    errors += _duplicates(((join_path("policy_routing.marks", i, "fwmark"), m.fwmark) for i, m in items(marks)),
                          "fwmark")
    errors += _duplicates(((join_path("policy_routing.marks", i, "name"), m.name) for i, m in items(marks)),
                          "mark name")
    errors += _duplicates(((join_path("policy_routing.marks", i, "priority"), m.priority)
                           for i, m in items(marks)), "rule priority")
    for i, mark in items(marks):
        errors += _unknown(join_path("policy_routing.marks", i, "table"), mark.table, tables, "table")
    return errors


def _hosts(nodeset: str | None, inv: Inventory) -> list[Host]:
    if inv is None:
        return []
    if nodeset is None:
        return list(inv.values())
    return [inv[n] for n in _expand(nodeset) if n in inv]


def check_natrouter(s: dict, inv: Inventory) -> list[PillarError]:
    nat, networks = s.get("natrouter"), s.get("networks")
    if nat is None:
        return []
    errors = _unknown_hosts("natrouter.hosts", nat.hosts, inv)
    routers = _hosts(nat.hosts, inv)
    for key in ("inside", "outside"):
        net = getattr(nat, key)
        errors += _unknown(join_path("natrouter", key), net, networks, "network")
        errors += [PillarError(join_path("natrouter", key), f"host {h.name} has no interface on {net}", net)
                   for h in routers if networks and net in networks and net not in h.interfaces]
    if "keepalived" in s:
        errors += _unknown("natrouter.vrrp_instance", nat.vrrp_instance,
                           [x.name for _, x in items(s["keepalived"].instances)], "keepalived instance")
    return errors + _natrouter_sync(nat, networks, inv) + _natrouter_snat(nat, networks)


def _natrouter_sync(nat: Any, networks: Any, inv: Inventory) -> list[PillarError]:
    if not nat.conntrack_sync:
        return []
    errors = []
    if nat.sync_network is not None:
        net = nat.sync_network
        errors += _unknown("natrouter.sync_network", net, networks, "network")
        errors += [PillarError("natrouter.sync_network", f"host {h.name} has no interface on {net}", net)
                   for h in _hosts(nat.hosts, inv) if networks and net in networks and net not in h.interfaces]
    # conntrackd's UDP channel has one destination: unicast sync works between two routers only.
    count = len(_expand(nat.hosts))
    if nat.sync_transport == "udp" and count != 2:
        errors.append(PillarError("natrouter.sync_transport", f"udp syncs exactly 2 hosts, hosts has {count}: "
                                  "use multicast", nat.sync_transport))
    if not netaddr.IPAddress(nat.sync_group).is_multicast():
        errors.append(PillarError("natrouter.sync_group", "is not a multicast address", nat.sync_group))
    return errors


def _natrouter_snat(nat: Any, networks: Any) -> list[PillarError]:
    if nat.snat_address is None or not networks or nat.outside not in networks:
        return []
    cidr = networks[nat.outside].cidr
    if _in(nat.snat_address, cidr):
        return []
    return [PillarError("natrouter.snat_address", f"is outside {nat.outside} {cidr}", nat.snat_address)]


def check_frontend(s: dict, inv: Inventory) -> list[PillarError]:
    fe = s.get("frontend")
    if fe is None:
        return []
    errors = _unknown_hosts("frontend.hosts", fe.hosts, inv)
    if "lvs" in s:
        services = {x.name: (i, x) for i, x in items(s["lvs"].services)}
        errors += _unknown("frontend.lvs_service", fe.lvs_service, list(services), "lvs service")
        if fe.lvs_service in services:
            errors += _pool_is_frontends(fe, *services[fe.lvs_service], inv)
    return errors + _nat_table_is_free(fe, s.get("policy_routing"))


def _nat_table_is_free(fe: Any, routing: Any) -> list[PillarError]:
    """The NAT return path's table is the frontend formula's alone: policy routing would empty it."""
    ours = fe.nat_return
    return [PillarError(f"frontend.nat_return.{key}", f"is also policy_routing.tables[{i}] {t.name} ({t.id})", value)
            for i, t in items(routing.tables if routing is not None else [])
            for key, value, theirs in (("table", ours.table, t.id), ("name", ours.name, t.name)) if value == theirs]


def _pool_is_frontends(fe: Any, index: int, svc: Any, inv: Inventory) -> list[PillarError]:
    """The login pool's real servers are frontends: only they get sshd's settings and the shared host
    keys. (A host the inventory lacks is reported as such, once.)"""
    frontends = set(_expand(fe.hosts)) | ({r.host for _, r in items(svc.real_servers)} - set(inv or ()))
    return [PillarError(join_path("lvs.services", index, "real_servers", j, "host"),
                        f"is not one of frontend.hosts ({fe.hosts}), the pool of lvs service {svc.name}", r.host)
            for j, r in items(svc.real_servers) if r.host not in frontends]


def check_diskless(s: dict, inv: Inventory) -> list[PillarError]:
    dl = s.get("diskless")
    if dl is None:
        return []
    names = [i.name for _, i in items(dl.images)]
    errors = _duplicates(((join_path("diskless.images", i, "name"), x.name) for i, x in items(dl.images)), "image name")
    errors += _unknown("diskless.server", dl.server, inv, "host")
    errors += _unknown("diskless.default_image", dl.default_image, names, "image")
    errors += _discovery(dl.discovery, s.get("networks"), inv)
    return errors + _boot_overrides(dl, names, inv)


def _discovery(disc: Any, networks: Any, inv: Inventory) -> list[PillarError]:
    """The discovery range lies in the admin network, in order, and holds no declared address
    (a registered node's static lease must never be handed to an unknown machine)."""
    admin = (networks or {}).get("admin")
    if disc is None or admin is None:
        return []
    cidr = netaddr.IPNetwork(admin.cidr)
    errors = [PillarError(f"diskless.discovery.{end}", f"is not in the admin network ({admin.cidr})",
                          getattr(disc, end))
              for end in ("start", "end") if netaddr.IPAddress(getattr(disc, end)) not in cidr]
    first, last = netaddr.IPAddress(disc.start), netaddr.IPAddress(disc.end)
    if first > last:
        errors.append(PillarError("diskless.discovery.end", f"comes before start ({disc.start})", disc.end))
    taken = sorted(h.name for h in (inv or {}).values() if "admin" in h.interfaces and h.interfaces["admin"].ip
                   and first <= netaddr.IPAddress(h.interfaces["admin"].ip) <= last)
    if taken and not errors:
        errors.append(PillarError("diskless.discovery", f"the range {disc.start}-{disc.end} holds declared "
                                  f"addresses ({', '.join(taken)})", f"{disc.start}-{disc.end}"))
    return errors


def _boot_overrides(dl: Any, images: list[str], inv: Inventory) -> list[PillarError]:
    """Each override names declared hosts and images, and gets at least one node: the first
    override naming a node wins, so one whose nodes earlier ones all took does nothing."""
    errors, taken = [], set()
    for i, over in items(dl.overrides):
        path = join_path("diskless.overrides", i)
        errors += _unknown_hosts(f"{path}.nodes", over.nodes, inv)
        errors += _unknown(f"{path}.image", over.image, images, "diskless image")
        hosts = set(_expand(over.nodes))
        if hosts and hosts <= taken:
            errors.append(PillarError(f"{path}.nodes", "matches no node: earlier overrides take them all "
                                      "(the first override naming a node wins)", over.nodes))
        taken |= hosts
    return errors


def check_node(s: dict, inv: Inventory) -> list[PillarError]:
    node, networks = s.get("node"), s.get("networks")
    if node is None:
        return []
    errors = []
    for i, net in items(node.hosts_file.networks):
        errors += _unknown(join_path("node.hosts_file.networks", i), net, networks, "network")
    for i, mount in items(node.mounts):
        if mount.hosts:
            errors += _unknown_hosts(join_path("node.mounts", i, "hosts"), mount.hosts, inv)
    errors += _duplicates(((join_path("node.mounts", i, "path"), (m.path, m.hosts)) for i, m in items(node.mounts)),
                          "mount point", shown=lambda v: v[0])
    return errors


def check_secrets(s: dict, inv: Inventory) -> list[PillarError]:
    secrets, ka = s.get("secrets"), s.get("keepalived")
    if secrets is None or ka is None:
        return []
    known = {x.name: x for _, x in items(ka.instances)}
    errors = []
    for name in secrets.keepalived:
        path = join_path("secrets.keepalived", name)
        errors += _unknown(path, name, known, "keepalived instance")
        if name in known and known[name].vrrp_version == 3:
            errors.append(PillarError(path, "VRRPv3 has no authentication: remove this secret", has_value=False))
    return errors


CHECKS: list[Callable[[dict, Inventory], list[PillarError]]] = [
    check_networks, check_nodes, check_lvs, check_keepalived, check_policy_routing,
    check_natrouter, check_frontend, check_diskless, check_node, check_secrets,
]


def check(parsed: Parsed) -> list[PillarError]:
    """Every cross-field error of the parsed sections.

    A reference to a name declared by an item that failed to parse is not reported again.
    """
    return check_and_expand(parsed)[0]


def check_and_expand(parsed: Parsed) -> tuple[list[PillarError], dict[str, Host]]:
    """``check``, and the inventory it expanded on the way ({} when ``nodes`` did not parse):
    what the pillar context needs, without expanding the nodesets a second time."""
    sections = parsed.sections
    inventory, errors = expand_groups(sections["nodes"]) if "nodes" in sections else (None, [])
    try:
        for rule in CHECKS:
            errors += rule(sections, inventory)
    finally:
        _expand.cache_clear()  # expansions are kept for one check only
    return [e for e in errors if not _declared_by_a_bad_item(e, parsed.shadow)], inventory or {}


def _declared_by_a_bad_item(error: PillarError, shadow: set[str]) -> bool:
    if not error.refs:
        return False
    return set(error.refs) <= shadow or (error.ref_kind == "host" and ANY_HOST in shadow)
