"""Registering new nodes from the boot server's DHCP leases (seed 002: ``kestrel-nodes
--register`` names the MACs the DHCP server saw; issue 12, step 4). Pure: the runner reads the
leases and the pillar file, and writes what this returns.

The machines a lease names whose MAC the inventory does not know are given, in the order they
took their lease (power them on in rack order and the names follow the rack), the free names of
a nodeset and the free addresses after the highest one their role already has on the network.
Nothing already in the inventory is reused: not a name, not a MAC, not an address.

The inventory file is edited as text, not re-serialised: the new node groups are appended at the
end of the top-level ``nodes:`` list, so the file's comments and layout stay; the result is parsed
again and must hold exactly the old groups plus the new ones.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import netaddr
import yaml

from hpc_inventory import Host

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")


@dataclass(frozen=True)
class Lease:
    expiry: int
    mac: str
    ip: str


@dataclass(frozen=True)
class Registration:
    name: str
    mac: str
    ip: str


def parse_leases(text: str) -> list[Lease]:
    """dnsmasq's lease file: ``<expiry> <mac> <ip> <hostname|*> <client id|*>`` per IPv4 lease
    (a ``duid`` line and IPv6 leases are skipped)."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or words[0] == "duid" or ":" in words[2] or not words[0].isdigit():
            continue
        out.append(Lease(int(words[0]), str(netaddr.EUI(words[1], dialect=netaddr.mac_unix_expanded)), words[2]))
    return out


def _free_addresses(inventory: Mapping[str, Host], role: str, network: str, cidr: str, first_ip: str | None):
    used = {i.ip for h in inventory.values() for i in h.interfaces.values() if i.ip}
    net = netaddr.IPNetwork(cidr)
    if first_ip is None:
        mine = [netaddr.IPAddress(h.interfaces[network].ip) for h in inventory.values()
                if h.role == role and network in h.interfaces and h.interfaces[network].ip]
        if not mine:
            raise ValueError(f"no {role} node has an address on {network} yet: give first_ip")
        start = max(mine) + 1
    else:
        start = netaddr.IPAddress(first_ip)
        if start not in net:
            raise ValueError(f"first_ip {first_ip} is not in the {network} network ({cidr})")
    address = start
    while address in net and address != net.broadcast:
        if str(address) not in used:
            yield str(address)
        address += 1


def propose(leases: Sequence[Lease], inventory: Mapping[str, Host], names: Sequence[str], role: str,
            network: str, cidr: str, first_ip: str | None = None) -> list[Registration]:
    """A name and an address for each MAC the leases show and the inventory lacks. ValueError
    when the nodeset has too few free names or the network too few free addresses."""
    known = {i.mac for h in inventory.values() for i in h.interfaces.values() if i.mac}
    new: dict[str, Lease] = {}
    for lease in sorted(leases, key=lambda lease: (lease.expiry, lease.mac)):
        if lease.mac not in known and lease.mac not in new:
            new[lease.mac] = lease
    if not new:
        return []
    free = [n for n in names if n not in inventory]
    if len(free) < len(new):
        raise ValueError(f"{len(new)} unknown machines but {len(free)} free names in the nodeset "
                         f"({', '.join(free) or 'none'})")
    addresses = _free_addresses(inventory, role, network, cidr, first_ip)
    out = []
    for name, mac in zip(free, new, strict=False):
        ip = next(addresses, None)
        if ip is None:
            raise ValueError(f"the {network} network ({cidr}) has no free address left for {name}")
        out.append(Registration(name, mac, ip))
    return out


def groups(found: Sequence[Registration], role: str, network: str, interface: str,
           image: str | None) -> list[dict]:
    """The inventory's node groups for ``found``: one per node (its own MAC and address)."""
    out = []
    for reg in found:
        group: dict = {"nodeset": reg.name, "role": role}
        if image:
            group["image"] = image
        group["interfaces"] = {network: {"name": interface, "ip": reg.ip, "mac": reg.mac}}
        out.append(group)
    return out


_TOP_KEY = re.compile(r"^[^\s#]")


def append_groups(text: str, new: Sequence[dict]) -> str:
    """``text`` (a pillar file with a top-level ``nodes:`` list) with ``new`` appended to that list,
    as flow-style items; ValueError when the file has no such list or the edit does not parse back
    to exactly the old groups plus the new ones."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"^nodes:\s*(#.*)?$", line)), None)
    if start is None:
        raise ValueError("no top-level 'nodes:' list in the file")
    end = next((i for i in range(start + 1, len(lines)) if _TOP_KEY.match(lines[i])), len(lines))
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # keep the blank lines before the next key after the new items
    items = [f"  - {yaml.safe_dump(g, default_flow_style=True, sort_keys=False).strip()}"
             f"  # registered from its DHCP lease\n" for g in new]
    if lines[end - 1:end] and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    edited = "".join(lines[:end] + items + lines[end:])
    before = yaml.safe_load(text) or {}
    try:
        after = yaml.safe_load(edited) or {}
    except yaml.YAMLError:
        after = {}
    if after.get("nodes") != list(before.get("nodes") or []) + list(new):
        raise ValueError("appending to the nodes list did not parse back as expected: file left as it was")
    return edited


BOOT_GRAIN = "hpcnet_boot"  # "<name> <boot MAC>", written at each boot by the image's hpcnet-identity


@dataclass(frozen=True)
class KeyVerdict:
    ok: bool
    reason: str
    ours: bool = True  # False: the key claims no diskless identity at all (an admin's business)


def key_verdict(minion: str, grains: Mapping | None, allowed: Collection[str]) -> KeyVerdict:
    """Whether the key a machine presents as ``minion``, with the ``autosign_grains`` it sent,
    belongs to a registered diskless node: its boot grain must be "<minion> <MAC>" and that pair
    one the inventory has (``allowed``, from autosign_values). Unlike Salt's own
    ``autosign_grains_dir``, the name in the grain must be the key's id: a registered node's pair
    cannot get a key accepted under another id (a frontend's, whose key is still pending)."""
    claim = (grains or {}).get(BOOT_GRAIN) if isinstance(grains, Mapping) else None
    if not isinstance(claim, str) or not claim.strip():
        return KeyVerdict(False, f"no {BOOT_GRAIN} grain sent with the key", ours=False)
    name, _, mac = claim.strip().partition(" ")
    claim = f"{name} {mac.strip().lower()}"
    if name != minion:
        return KeyVerdict(False, f"{BOOT_GRAIN} {claim!r} names {name!r}, but the key is for {minion!r}")
    if claim not in allowed:
        return KeyVerdict(False, f"{BOOT_GRAIN} {claim!r} is no registered diskless node's name and boot MAC")
    return KeyVerdict(True, f"registered diskless node ({claim})")


def autosign_values(inventory: Mapping[str, Host], network: str, diskless: Sequence[str]) -> list[str]:
    """The ``hpcnet_boot`` grain values the master may sign keys for (Salt's autosign_grains_dir
    file): "<name> <MAC on network>" for each diskless node, as the image's hpcnet-identity
    writes them at boot."""
    return sorted(f"{name} {inventory[name].interfaces[network].mac.lower()}" for name in diskless
                  if name in inventory and network in inventory[name].interfaces
                  and inventory[name].interfaces[network].mac)


def diskless_nodes(inventory: Mapping[str, Host], overrides: Sequence[Sequence[str]]) -> list[str]:
    """The nodes that boot an image: an ``image`` of their own, or named by a boot override
    (``overrides``: each override's expanded nodes)."""
    named = {n for hosts in overrides for n in hosts}
    return sorted(n for n, h in inventory.items() if h.image is not None or n in named)
