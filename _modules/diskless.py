"""Diskless nodes' boot server (seeds 001, 002): DHCP and TFTP from the inventory."""

from __future__ import annotations

from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_context, hpc_diskless

__virtualname__ = "diskless"
BOOT_NETWORK = "admin"  # seed 001: deployment runs on the administration network


def __virtual__():
    return __virtualname__


def _ctx():
    return hpc_context.load(__context__, __pillar__, __opts__, CommandExecutionError)


def is_server():
    """
    Whether this host is the pillar's boot server (``diskless.server``).

    CLI Example:

    .. code-block:: bash

        salt '*' diskless.is_server
    """
    return _ctx().member["boot_server"]


def dnsmasq_config():
    """
    dnsmasq's configuration on the boot server: static DHCP leases for every declared MAC on the
    admin network, unknown MACs ignored, TFTP on.

    CLI Example:

    .. code-block:: bash

        salt labboot1 diskless.dnsmasq_config
    """
    ctx = _ctx()
    server = ctx.host
    if BOOT_NETWORK not in server.interfaces:
        raise CommandExecutionError(f"{ctx.minion} has no interface on the {BOOT_NETWORK} network")
    return hpc_diskless.dnsmasq_conf(server, BOOT_NETWORK, ctx.sections["networks"][BOOT_NETWORK], ctx.inventory,
                                     ctx.sections["diskless"])
