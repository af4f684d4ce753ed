"""Wake-on-LAN from the boot server (seed 002: KestrelHPC wakes its nodes; issue 12, step 4).

A magic packet is 6 bytes of 0xff then the target's MAC 16 times, sent as a UDP broadcast (port 9,
"discard") on the network the node's NIC is on: the NIC's firmware looks for the pattern in any
frame, so the payload is all that matters. It is sent out of the boot server's interface on that
network (SO_BINDTODEVICE), to the network's broadcast address: a directed broadcast that a router
would drop never has to cross one.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import netaddr

from hpc_inventory import Host

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

PORT = 9


@dataclass(frozen=True)
class Target:
    host: str
    mac: str


def magic_packet(mac: str) -> bytes:
    raw = netaddr.EUI(mac).packed
    return b"\xff" * 6 + raw * 16


def targets(names: Iterable[str], inventory: Mapping[str, Host], network: str) -> list[Target]:
    """The MAC of each named node on ``network``; ValueError naming the nodes that are not
    declared or have no MAC there (nothing is sent then: a half-woken nodeset is a surprise)."""
    names = list(names)
    unknown = [n for n in names if n not in inventory]
    if unknown:
        raise ValueError(f"not declared in the inventory: {', '.join(unknown)}")
    no_mac = [n for n in names if network not in inventory[n].interfaces or not inventory[n].interfaces[network].mac]
    if no_mac:
        raise ValueError(f"no MAC on the {network} network (nodes[].interfaces.{network}.mac): {', '.join(no_mac)}")
    return [Target(n, inventory[n].interfaces[network].mac) for n in names]


def send(found: Sequence[Target], interface: str, broadcast: str, port: int = PORT) -> int:
    """One magic packet per target out of ``interface`` to ``broadcast``:``port``; the number sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        for target in found:
            sock.sendto(magic_packet(target.mac), (broadcast, port))
    return len(found)
