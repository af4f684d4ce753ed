"""Lab networks: bridges in the root netns, veth pairs into lab hosts.

Every link the lab makes in the root netns is named ``<prefix>-...`` and
recorded before creation, so teardown can delete exactly it. The host side
gets no address at all (IPv6 disabled too): lab traffic is bridged between
lab namespaces and never routed by the real host.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from .registry import Run

if TYPE_CHECKING:
    from .host import Host

BRIDGE_NF = Path("/proc/sys/net/bridge")
# No STP and no forwarding delay (ports forward at once); flood all multicast
# (VRRP, IGMP-less lab); keep bridged frames out of the host's netfilter.
BRIDGE_OPTS = "stp_state 0 forward_delay 0 mcast_snooping 0 nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run iproute2; errors carry its stderr so failures explain themselves."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def link_exists(name: str, netns: str | None = None) -> bool:
    where = ["-n", netns] if netns else []
    return ip(*where, "link", "show", "dev", name, check=False).returncode == 0


def _own(run: Run, name: str) -> None:
    # Root-netns links we touch must be ours: never act on someone else's.
    if not name.startswith(f"{run.prefix}-"):
        raise ValueError(f"{name!r} is not a link of lab run {run.prefix!r}")


def _no_ipv6(name: str) -> None:
    # No link-local address on the host side; L2 forwarding is unaffected.
    path = Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6")
    if path.exists():
        path.write_text("1\n")


def _disable_bridge_nf() -> None:
    # With br_netfilter loaded, bridged frames would cross the host's
    # iptables/nft FORWARD chains; the per-bridge nf_call_* flags can only
    # add to this global switch, not override it.
    for proto in ("iptables", "ip6tables", "arptables"):
        path = BRIDGE_NF / f"bridge-nf-call-{proto}"
        if path.exists() and path.read_text().strip() != "0":
            path.write_text("0\n")


def make_bridge(run: Run, suffix: str) -> str:
    """Create an up, address-less, STP-less bridge ``<prefix>-<suffix>``."""
    name = run.name(suffix)
    run.record("bridge", name)
    ip("link", "add", name, "type", "bridge", *BRIDGE_OPTS.split())
    _no_ipv6(name)
    _disable_bridge_nf()
    ip("link", "set", name, "up")
    return name


def _veth_name(run: Run) -> str:
    # Host names are too long for 15-char link names: number the pairs.
    used = {r.name for r in run.records() if r.kind == "link"}
    n = 0
    while run.name(f"v{n}") in used or link_exists(run.name(f"v{n}")):
        n += 1
    return run.name(f"v{n}")


def make_veth_into(run: Run, host: Host, bridge: str, ifname: str, mac: str | None = None) -> str:
    """Give ``host`` an interface ``ifname`` (down) on ``bridge``.

    Returns the name of the root-netns end (``<prefix>-vN``), a port of ``bridge``.
    """
    _own(run, bridge)
    name = _veth_name(run)
    run.record("link", name, host=host.name, ifname=ifname, bridge=bridge)
    peer = ["peer", "name", ifname, "netns", host.netns]
    peer += ["address", mac] if mac else []
    ip("link", "add", name, "type", "veth", *peer)
    _no_ipv6(name)
    ip("link", "set", name, "master", bridge, "up")
    return name


def set_link(run: Run, name: str, up: bool, host: Host | None = None) -> None:
    """Bring a lab link up/down, in the root netns or inside ``host``."""
    if host is None:
        _own(run, name)
    where = ["-n", host.netns] if host else []
    ip(*where, "link", "set", name, "up" if up else "down")


def delete_link(run: Run, name: str) -> None:
    """Delete a root-netns lab link/bridge/tap; a missing one is fine."""
    _own(run, name)
    if link_exists(name):
        ip("link", "del", name, check=False)
