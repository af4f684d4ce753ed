"""A login frontend behind an LVS director in direct routing (seed 001): the VIP on ``lo`` and the
ARP settings that keep the frontend from answering for it.

In direct routing the director hands the client's packet on unchanged (destination: the VIP) to
the frontend's MAC address, so the frontend must hold the VIP, on ``lo`` where nobody else sees
it, and must never answer ARP for it on the shared network (``arp_ignore=1``: answer only for
addresses of the interface asked; ``arp_announce=2``: never use the VIP as the source of its own
ARP requests), or clients would bypass the director. Ours: the addresses on ``lo`` with our
label (``lo:hpcvip``); any other address there is someone else's and stays.

Pure Python: ``dr_vips`` and ``arp_sysctls`` from the pillar, ``parse_lo`` reads
``ip -j addr show dev lo``, ``plan`` compares. No Salt dunders, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from hpc_change import Change
from hpc_inventory import Host
from hpc_schema import Lvs

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

LABEL = "lo:hpcvip"  # marks the VIPs we put on lo
ARP = {"arp_ignore": 1, "arp_announce": 2}


def _dr_services(host: str, lvs: Lvs):
    return [svc for svc in lvs.services if svc.forward == "dr" and any(r.host == host for r in svc.real_servers)]


def dr_vips(host: str, lvs: Lvs) -> list[str]:
    """The VIPs (``a.b.c.d/32``) this host must hold on lo: those of the direct-routing services it
    is a real server of."""
    return sorted({f"{svc.vip}/32" for svc in _dr_services(host, lvs)})


def arp_sysctls(host: Host, lvs: Lvs) -> dict[str, int]:
    """``arp_ignore`` / ``arp_announce`` on each interface where the directors reach this host in
    direct routing (the kernel takes the larger of ``all`` and the interface's own value)."""
    out = {}
    for svc in _dr_services(host.name, lvs):
        iface = host.interfaces[svc.reals_on].name
        out.update({f"net.ipv4.conf.{iface}.{key}": value for key, value in ARP.items()})
    return dict(sorted(out.items()))


def parse_lo(text: str) -> list[str]:
    """Our VIPs on lo (``a.b.c.d/32``) from ``ip -j addr show dev lo``."""
    data = json.loads(text or "[]")
    return sorted(f"{a['local']}/{a['prefixlen']}" for link in data for a in link.get("addr_info", [])
                  if a.get("family") == "inet" and a.get("label") == LABEL)


def plan(want: Iterable[str], have: Iterable[str]) -> list[Change]:
    want, have = sorted(set(want)), set(have)
    steps = [Change("add", "address", vip, new=vip, summary=f"{vip} dev lo label {LABEL}")
             for vip in want if vip not in have]
    return steps + [Change("delete", "address", vip, old=vip, summary=f"{vip} dev lo label {LABEL}")
                    for vip in sorted(have - set(want))]


def ip_argv(step: Change) -> list[str]:
    """The ``ip`` command that carries out one step."""
    verb = "add" if step.op == "add" else "del"
    return ["ip", "addr", verb, step.target, "dev", "lo", "label", LABEL]


