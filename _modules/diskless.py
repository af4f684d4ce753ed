"""Diskless nodes' boot server (seeds 001, 002): DHCP and TFTP from the inventory."""

from __future__ import annotations

from salt.exceptions import CommandExecutionError

import hpc_reload

hpc_reload.forget_changed()  # a sync may have changed our helpers: see hpc_reload

import hpc_diskless
import hpc_pillar

__virtualname__ = "diskless"
BOOT_NETWORK = "admin"  # seed 001: deployment runs on the administration network


def __virtual__():
    return __virtualname__


def _sections():
    return hpc_pillar.load_or_raise(dict(__pillar__), CommandExecutionError)


def is_server():
    """
    Whether this host is the pillar's boot server (``diskless.server``).

    CLI Example:

    .. code-block:: bash

        salt '*' diskless.is_server
    """
    return _sections()["diskless"].server == __opts__["id"]


def dnsmasq_config():
    """
    dnsmasq's configuration on the boot server: static DHCP leases for every declared MAC on the
    admin network, unknown MACs ignored, TFTP on.

    CLI Example:

    .. code-block:: bash

        salt labboot1 diskless.dnsmasq_config
    """
    sections = _sections()
    inventory = hpc_pillar.inventory(dict(__pillar__))
    server = inventory.get(__opts__["id"])
    if server is None or BOOT_NETWORK not in server.interfaces:
        raise CommandExecutionError(f"{__opts__['id']} has no interface on the {BOOT_NETWORK} network")
    return hpc_diskless.dnsmasq_conf(server, BOOT_NETWORK, sections["networks"][BOOT_NETWORK], inventory,
                                     sections["diskless"])
