"""A login frontend behind an LVS director in NAT mode (seed 000): the return path of the VIP's replies.

In NAT mode the director rewrites the client's packet to the frontend's own address on the real
servers' network (``real_network``); the frontend's reply must go back through the director that
holds the VIP, which rewrites its source to the VIP. Seed 000's compute nodes had the director as
their default gateway. A frontend that has a route of its own to the clients (the lab's, with a
WAN interface) would answer them directly, from an address they never spoke to, and the login
hangs. So: a rule ``from <its real_network address> lookup lvs_nat`` and, in that table, the
real network on-link and a default route via ``nat_gateway``, the directors' VRRP address there
(it moves with the VIP, so the replies follow a failover). Only replies leave from that address
(the frontend's own traffic takes the source of its usual route), and hosts on the real network
itself are still answered directly.

Pure: the wanted ``RoutingState`` from the pillar; ``hpc_routing.plan`` and its handle do the rest
(what we own: the table in our own rt_tables file, its routes and the rules that look it up).
"""

from __future__ import annotations

from hpc_inventory import Host
from hpc_routing import DEFAULT, Route, RoutingState, Rule
from hpc_schema import Lvs, NatReturn, Network

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

RT_TABLES_NAME = "hpcnet-frontend.conf"  # beside policy routing's own file: neither empties the other's


def nat_services(host: str, lvs: Lvs) -> list[str]:
    """The NAT services with a ``nat_gateway`` this host is a real server of (by name)."""
    return [svc.name for svc in lvs.services if svc.forward == "nat" and svc.nat_gateway is not None
            and any(r.host == host for r in svc.real_servers)]


def desired(host: Host, lvs: Lvs, settings: NatReturn, networks: dict[str, Network]) -> RoutingState:
    """The rule and routes this host needs as a real server of the pillar's NAT services that name a
    ``nat_gateway``; empty when it serves none. Services that disagree on the gateway of one
    address are an error (ValueError naming both): one address, one way back."""
    gateways: dict[str, tuple[str, str]] = {}  # source address -> (gateway, service)
    rules, routes = set(), set()
    for svc in lvs.services:
        if svc.forward != "nat" or svc.nat_gateway is None or not any(r.host == host.name for r in svc.real_servers):
            continue
        iface = host.interfaces[svc.reals_on]
        seen = gateways.setdefault(iface.ip, (svc.nat_gateway, svc.name))
        if seen[0] != svc.nat_gateway:
            raise ValueError(f"lvs.services {seen[1]} and {svc.name}: nat_gateway {seen[0]} and {svc.nat_gateway} "
                             f"for one real server address ({host.name} {iface.ip}): give them one")
        rules.add(Rule(settings.priority, 0, settings.table, (), f"{iface.ip}/32"))
        routes.add(Route(settings.table, networks[svc.reals_on].cidr, None, iface.name))
        routes.add(Route(settings.table, DEFAULT, svc.nat_gateway, iface.name))
    if not rules:
        return RoutingState()
    return RoutingState({settings.table: settings.name}, frozenset(rules), frozenset(routes))
