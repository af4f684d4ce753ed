"""keepalived.conf for one host, rendered from the pillar's VRRP instances.

keepalived here owns VRRP and the virtual IPs only, never IPVS entries (those belong to the
ipvs module): a ``virtual_server`` block would also make the daemon exit where IPVS is absent.
"""

from __future__ import annotations

from hpc_inventory import Host
from hpc_schema import Keepalived, VrrpInstance
from hpc_types import expand

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

DEFAULT_PRIORITY = 100
NOTIFY = "/etc/keepalived/hpc-notify"


def instances_of(host: str, keepalived: Keepalived) -> list[VrrpInstance]:
    return [i for i in keepalived.instances if i is not None and host in expand(i.hosts)]


def virtual_addresses(host: Host, keepalived: Keepalived) -> list[tuple[str, str]]:
    """(address/prefix, interface) of every VIP this host's instances may hold, as keepalived
    adds them (a bare address is a /32)."""
    pairs = []
    for inst in instances_of(host.name, keepalived):
        nets = [(inst.network, inst.virtual_ips), *sorted(inst.other_virtual_ips.items())]
        pairs += [(str(vip) if "/" in str(vip) else f"{vip}/32", host.interfaces[net].name)
                  for net, vips in nets for vip in vips]
    return pairs


def _instance(inst: VrrpInstance, host: Host, auth_pass: str | None) -> list[str]:
    iface = host.interfaces[inst.network].name
    lines = [
        f"vrrp_instance {inst.name} {{",
        "    state BACKUP",  # priorities elect the master; no host claims it at start
        f"    interface {iface}",
        f"    virtual_router_id {inst.vrid}",
        f"    priority {inst.priorities.get(host.name, DEFAULT_PRIORITY)}",
        f"    advert_int {inst.advert_int:g}",
        f"    version {inst.vrrp_version}",
    ]
    if inst.nopreempt:
        lines.append("    nopreempt")
    if auth_pass and inst.vrrp_version == 2:  # VRRPv3 has no authentication
        lines += ["    authentication {", "        auth_type PASS", f"        auth_pass {auth_pass}", "    }"]
    lines.append("    virtual_ipaddress {")
    lines += [f"        {vip} dev {iface}" for vip in inst.virtual_ips]
    lines += [f"        {vip} dev {host.interfaces[net].name}"
              for net, vips in sorted(inst.other_virtual_ips.items()) for vip in vips]
    lines += ["    }", f'    notify "{NOTIFY} {inst.name}"', "}"]
    return lines


def render(host: Host, keepalived: Keepalived, auth: dict[str, str] | None = None) -> str:
    """The whole keepalived.conf of ``host``; empty when it is in no instance."""
    mine = instances_of(host.name, keepalived)
    if not mine:
        return ""
    lines = [
        "# Managed by Salt (hpcnet keepalived) from the cluster pillar: local edits are overwritten.",
        "global_defs {",
        f"    router_id {host.name}",
        "    enable_script_security",
        "    script_user root",
        "    vrrp_garp_master_refresh 60",
    ]
    if keepalived.fast_nice and any(i.advert_int < 1 for i in mine):
        # A backup takes over after 3 adverts + skew without one (0.18 s at 0.05 s adverts): either
        # router descheduled that long on a busy host makes two masters. Not real-time scheduling:
        # keepalived 2.2.7's VRRP child was SIGKILLed by its own RLIMIT_RTTIME on reload (lab).
        lines.append(f"    vrrp_priority {keepalived.fast_nice}")
    lines.append("}")
    for inst in mine:
        lines += [""] + _instance(inst, host, (auth or {}).get(inst.name))
    return "\n".join(lines) + "\n"
