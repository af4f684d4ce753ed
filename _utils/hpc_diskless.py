"""The boot server's DHCP/TFTP configuration (dnsmasq), from the inventory (seeds 001, 002).

Only declared nodes get an address: a MAC the inventory does not know is not answered
(seed 001: "Otherwise, the DHCP request is not honored").
"""

from __future__ import annotations

import netaddr

from hpc_bootmenu import BOOT_SCRIPT
from hpc_inventory import Host
from hpc_schema import Diskless, Network

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

TFTP_ROOT = "/srv/tftp"
BOOT_NETWORK = "admin"  # seed 001: deployment runs on the administration network
HTTP_PATH = "hpcnet"  # http://<boot server>/hpcnet/ serves diskless.store
# From Debian's ipxe package, for firmware whose PXE is not iPXE: BIOS (undionly) and UEFI x86-64.
IPXE_FILES = {"undionly.kpxe": "/usr/lib/ipxe/undionly.kpxe", "ipxe.efi": "/usr/lib/ipxe/ipxe.efi"}


def http_base(server: Host, network: str) -> str:
    return f"http://{server.interfaces[network].ip}/{HTTP_PATH}"


def dnsmasq_conf(server: Host, network: str, net: Network, inventory: dict[str, Host], spec: Diskless) -> str:
    cidr = netaddr.IPNetwork(net.cidr)
    lines = [
        "# Managed by Salt (hpcnet diskless) from the cluster pillar: local edits are overwritten.",
        "port=0",  # DHCP and TFTP only: the cluster's DNS lives elsewhere
        f"interface={server.interfaces[network].name}",
        "bind-interfaces",
        f"dhcp-range={cidr.network},static,{cidr.netmask}",
        "dhcp-authoritative",
        "enable-tftp",
        f"tftp-root={TFTP_ROOT}",
        "log-dhcp",
    ]
    if net.gateway:
        lines.append(f"dhcp-option=option:router,{net.gateway}")
    disc = spec.discovery
    if disc is None:
        lines.append("dhcp-ignore=tag:!known")  # an unknown MAC gets no answer at all
    else:  # an address to be seen by (diskless.register), never a boot file
        lines.append(f"dhcp-range=set:discovery,{disc.start},{disc.end},{cidr.netmask},{disc.lease_time}s")
    # PXE firmware gets iPXE by TFTP (UEFI x86-64: ipxe.efi, else undionly.kpxe); iPXE itself
    # (DHCP option 175) gets the boot script over HTTP, which chains to the node's menu. Only
    # declared nodes (tag known: a dhcp-host line) boot.
    lines += [
        "dhcp-match=set:ipxe,175",
        # iPXE's no-pxedhcp (option 175.176, one byte, as dnsmasq's example config spells it): there
        # is no ProxyDHCP server here, and without it iPXE goes on discovering for one (up to its
        # DHCP_DISC_PROXY_TIMEOUT_SEC, src/net/udp/dhcp.c). With it, seen in the lab: iPXE's
        # request 3 ms after the offer.
        "dhcp-option=encap:175,176,1b",
        "dhcp-match=set:efi64,option:client-arch,7",
        "dhcp-match=set:efi64,option:client-arch,9",
        "dhcp-boot=tag:known,tag:!ipxe,tag:efi64,ipxe.efi",
        "dhcp-boot=tag:known,tag:!ipxe,tag:!efi64,undionly.kpxe",
        f"dhcp-boot=tag:known,tag:ipxe,{http_base(server, network)}/{BOOT_SCRIPT}",
    ]
    for host in inventory.values():
        iface = host.interfaces.get(network)
        if iface and iface.mac and host.name != server.name:
            lines.append(f"dhcp-host={iface.mac},{host.name},{iface.ip}")
    return "\n".join(lines) + "\n"
