"""The inventory: node groups (``cn[001-128]``) expanded into hosts with their addresses.

An interface gives either its first address and MAC (the i-th node of the set
gets first + i) or one per node, in nodeset order.
"""

from __future__ import annotations

from dataclasses import dataclass

import netaddr

from hpc_schema import NodeGroup, PillarError, join_path
from hpc_types import expand

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")


@dataclass(frozen=True)
class HostInterface:
    network: str
    name: str
    ip: str
    mac: str | None


@dataclass(frozen=True)
class Host:
    name: str
    role: str
    group: int  # index of its node group in the pillar, for error paths
    interfaces: dict[str, HostInterface]  # network name -> interface
    image: str | None = None

    def ip(self, network: str) -> str | None:
        iface = self.interfaces.get(network)
        return iface.ip if iface else None


class _Values:
    """The values of a group's interface for each node, the first one parsed once for the whole group.

    Counted-up addresses are written as netaddr writes them (IPv4 dotted quad, MAC as
    aa:bb:cc:dd:ee:ff); anything else, and any overflow, goes through netaddr itself.
    """

    def __init__(self, values: list[str], count: int, kind: str) -> None:
        self.values, self.kind = values, kind
        self.own = len(values) == count
        self.first: netaddr.IPAddress | netaddr.EUI | None = None
        if values and not self.own:
            self.first = netaddr.IPAddress(values[0]) if kind == "ip" else netaddr.EUI(values[0])

    def __call__(self, index: int) -> str | None:
        if not self.values:
            return None
        if self.own:
            return self.values[index]
        first = self.first
        if self.kind == "ip":
            value = first.value + index
            if first.version == 4 and value <= 0xFFFFFFFF:
                return f"{value >> 24}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"
            return str(first + index)
        value = first.value + index
        if value <= 0xFFFFFFFFFFFF:
            return ":".join(f"{value >> shift & 255:02x}" for shift in (40, 32, 24, 16, 8, 0))
        return str(netaddr.EUI(value, dialect=netaddr.mac_unix_expanded))


def _count_error(group: NodeGroup, gi: int, net: str, kind: str, values: list[str], count: int) -> PillarError | None:
    if len(values) in (0, 1, count):
        return None
    return PillarError(
        join_path("nodes", gi, "interfaces", net, kind),
        f"gives {len(values)} values for the {count} nodes of {group.nodeset} (give 1, the first, or {count})",
        values,
    )


def expand_groups(groups: list[NodeGroup | None]) -> tuple[dict[str, Host], list[PillarError]]:
    """Hosts by name, and the errors met while expanding (count mismatches, duplicate names)."""
    hosts: dict[str, Host] = {}
    errors: list[PillarError] = []
    for gi, group in enumerate(groups):
        if group is None:  # failed to parse, reported already
            continue
        names = expand(group.nodeset)
        bad = False
        for net, iface in group.interfaces.items():
            for kind, values in (("ip", iface.ip), ("mac", iface.mac)):
                err = _count_error(group, gi, net, kind, values, len(names))
                if err:
                    errors.append(err)
                    bad = True
        values = [] if bad else [(net, iface.name, _Values(iface.ip, len(names), "ip"),
                                  _Values(iface.mac, len(names), "mac")) for net, iface in group.interfaces.items()]
        for index, name in enumerate(names):
            if name in hosts:
                first = hosts[name].group
                errors.append(PillarError(
                    join_path("nodes", gi, "nodeset"),
                    f"host {name} is already declared by nodes[{first}]", group.nodeset))
                continue
            if bad:
                continue
            interfaces = {net: HostInterface(net, name_, ip(index), mac(index)) for net, name_, ip, mac in values}
            hosts[name] = Host(name, group.role, gi, interfaces, group.image)
    return hosts, errors


def hosts_of(nodeset: str | None, inventory: dict[str, Host]) -> list[Host]:
    """The declared hosts of a nodeset (None means every host), unknown names skipped."""
    if nodeset is None:
        return list(inventory.values())
    return [inventory[name] for name in expand(nodeset) if name in inventory]
