"""Node basics rendered from the pillar: resolv.conf (fqdn_rotate), /etc/hosts, this host's mounts."""

from __future__ import annotations

from salt.exceptions import CommandExecutionError

import hpc_reload

hpc_reload.forget_changed()  # a sync may have changed our helpers: see hpc_reload

import hpc_node
import hpc_pillar

__virtualname__ = "node"


def __virtual__():
    return __virtualname__


def _load():
    return hpc_pillar.load_or_raise(dict(__pillar__), CommandExecutionError)


def _fqdn(sections):
    return f"{__opts__['id']}.{sections['cluster'].domain}"


def resolv_conf():
    """
    The content of /etc/resolv.conf for this host: nameservers rotated by FQDN, ``options rotate``.

    Returns an empty string when the pillar declares no resolver (the file is then left alone).

    CLI Example:

    .. code-block:: bash

        salt '*' node.resolv_conf
    """
    sections = _load()
    resolver = sections["node"].resolver
    return hpc_node.resolv_conf(resolver, _fqdn(sections)) if resolver else ""


def hosts_file():
    """
    The content of /etc/hosts for this host, generated from the inventory.

    CLI Example:

    .. code-block:: bash

        salt '*' node.hosts_file
    """
    sections = _load()
    inventory = hpc_pillar.inventory(dict(__pillar__))
    return hpc_node.hosts_file(inventory, sections["node"].hosts_file, sections["cluster"].domain)


def mounts():
    """
    The shared filesystem mounts that apply to this host, as dicts (path, device, fstype, options, mount).

    CLI Example:

    .. code-block:: bash

        salt 'labcn*' node.mounts
    """
    sections = _load()
    inventory = hpc_pillar.inventory(dict(__pillar__))
    return [m.model_dump() for m in hpc_node.mounts_for(__opts__["id"], sections["node"].mounts, inventory)]
