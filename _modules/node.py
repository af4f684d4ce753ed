"""Node basics rendered from the pillar: resolv.conf (fqdn_rotate), /etc/hosts, this host's mounts."""

from __future__ import annotations

from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_context, hpc_node

__virtualname__ = "node"


def __virtual__():
    return __virtualname__


def _ctx():
    return hpc_context.load(__context__, __pillar__, __opts__, CommandExecutionError)


def _fqdn(ctx):
    return f"{ctx.minion}.{ctx.sections['cluster'].domain}"


def resolv_conf():
    """
    The content of /etc/resolv.conf for this host: nameservers rotated by FQDN, ``options rotate``.

    Returns an empty string when the pillar declares no resolver (the file is then left alone).

    CLI Example:

    .. code-block:: bash

        salt '*' node.resolv_conf
    """
    ctx = _ctx()
    resolver = ctx.sections["node"].resolver
    return hpc_node.resolv_conf(resolver, _fqdn(ctx)) if resolver else ""


def hosts_file():
    """
    The content of /etc/hosts for this host, generated from the inventory.

    CLI Example:

    .. code-block:: bash

        salt '*' node.hosts_file
    """
    ctx = _ctx()
    return hpc_node.hosts_file(ctx.inventory, ctx.sections["node"].hosts_file, ctx.sections["cluster"].domain)


def mounts():
    """
    The shared filesystem mounts that apply to this host, as dicts (path, device, fstype, options, mount).

    CLI Example:

    .. code-block:: bash

        salt 'labcn*' node.mounts
    """
    ctx = _ctx()
    return [m.model_dump() for m in hpc_node.mounts_for(ctx.minion, ctx.sections["node"].mounts, ctx.inventory)]
