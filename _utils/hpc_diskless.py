"""The boot server's DHCP/TFTP configuration (dnsmasq), from the inventory (seeds 001, 002).

Only declared nodes get an address: a MAC the inventory does not know is not answered
(seed 001: "Otherwise, the DHCP request is not honored").
"""

from __future__ import annotations

import netaddr

from hpc_inventory import Host
from hpc_schema import Diskless, Network

TFTP_ROOT = "/srv/tftp"


def dnsmasq_conf(server: Host, network: str, net: Network, inventory: dict[str, Host], spec: Diskless) -> str:
    cidr = netaddr.IPNetwork(net.cidr)
    lines = [
        "# Managed by Salt (hpcnet diskless) from the cluster pillar: local edits are overwritten.",
        "port=0",  # DHCP and TFTP only: the cluster's DNS lives elsewhere
        f"interface={server.interfaces[network].name}",
        "bind-interfaces",
        f"dhcp-range={cidr.network},static,{cidr.netmask}",
        "dhcp-ignore=tag:!known",
        "dhcp-authoritative",
        "enable-tftp",
        f"tftp-root={TFTP_ROOT}",
        "log-dhcp",
    ]
    if net.gateway:
        lines.append(f"dhcp-option=option:router,{net.gateway}")
    for host in inventory.values():
        iface = host.interfaces.get(network)
        if iface and iface.mac and host.name != server.name:
            lines.append(f"dhcp-host={iface.mac},{host.name},{iface.ip}")
    return "\n".join(lines) + "\n"
