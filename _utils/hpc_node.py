"""Node basics as data: the resolver list rotated per host, /etc/hosts from the inventory, the mounts of a host.

Pure functions over the parsed pillar; the ``node`` execution module feeds them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from hpc_inventory import Host, hosts_of
from hpc_schema import HostsFile, Mount, Resolver

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

HEADER = "# Managed by Salt (hpcnet {what}) from the cluster pillar: local edits are overwritten.\n"


def fqdn_rotate(items: list[Any], fqdn: str) -> list[Any]:
    """Rotate items by an offset drawn from the host's FQDN, like Puppet stdlib's fqdn_rotate (seed 001).

    Stable for one host across runs, spread across hosts, so each server is first on ~1/n of them.
    """
    if not items:
        return []
    offset = int.from_bytes(hashlib.sha256(fqdn.encode()).digest()[:8], "big") % len(items)
    return items[offset:] + items[:offset]


def resolv_conf(resolver: Resolver, fqdn: str) -> str:
    lines = [HEADER.format(what="node.resolv_conf").rstrip()]
    if resolver.search:
        lines.append("search " + " ".join(resolver.search))
    lines += [f"nameserver {ip}" for ip in fqdn_rotate(list(resolver.nameservers), fqdn)]
    options = (["rotate"] if resolver.rotate else []) + [f"timeout:{resolver.timeout}",
                                                         f"attempts:{resolver.attempts}"]
    lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def hosts_file(inventory: dict[str, Host], spec: HostsFile, domain: str) -> str:
    """The host's FQDN resolves to its address on the first network listed (seed 001: the admin
    network); its other networks get ``<name>-<network>`` entries."""
    lines = [HEADER.format(what="node.hosts_file").rstrip(),
             "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback",
             "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    primary = spec.networks[0] if spec.networks else None
    for host in inventory.values():
        for net in spec.networks:
            ip = host.ip(net)
            if ip is None:
                continue
            names = [f"{host.name}.{domain}", host.name] if net == primary else [f"{host.name}-{net}"]
            lines.append(f"{ip}\t" + " ".join(names))
    lines += [f"{ip}\t{name}" for name, ip in sorted(spec.extra.items())]
    return "\n".join(lines) + "\n"


def mounts_for(host: str, mounts: list[Mount], inventory: dict[str, Host]) -> list[Mount]:
    """The mounts that apply to one host (a mount without hosts applies to every node)."""
    return [m for m in mounts if m is not None and (m.hosts is None or host in
                                                    {h.name for h in hosts_of(m.hosts, inventory)})]
