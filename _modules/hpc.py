"""The cluster pillar, read through its schema: validation, this host's context, the inventory.

Every subsystem reads the pillar through ``hpc_context`` (validated once per run, cached in
``__context__``), so a bad pillar is reported the same way everywhere: one line per mistake,
with its key path and bad value.
"""

from __future__ import annotations

import logging

from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_context

log = logging.getLogger(__name__)
__virtualname__ = "hpc"


def __virtual__():
    return __virtualname__


def _context(pillar=None):
    if pillar is not None:  # a pillar given on the command line is checked as given, not cached
        return hpc_context.build(pillar, __opts__["id"])
    return hpc_context.load(__context__, __pillar__, __opts__)


def validate(pillar=None):
    """
    Validate this minion's pillar against the cluster schema; return the errors, one string each.

    An empty list means the pillar is valid and this minion is declared in ``nodes``.

    CLI Example:

    .. code-block:: bash

        salt '*' hpc.validate
    """
    return _context(pillar).mistakes()


def context():
    """
    This host's view of the pillar, validated once per run: ``valid``, ``errors``, its ``role``
    and ``interfaces``, and ``member``: the part it takes in each subsystem (its VRRP
    instances, whether it is a director, a frontend, the boot server, a NAT router, policy
    routed and which interfaces the link beacon watches). Every ``map.jinja`` starts from it;
    on a bad pillar ``member`` is empty, so formulas render nothing and the gate reports.

    CLI Example:

    .. code-block:: bash

        salt '*' hpc.context
    """
    return _context().as_data()


def inventory(pillar=None):
    """
    Every declared host with its role and addresses per network, expanded from the nodesets.

    CLI Example:

    .. code-block:: bash

        salt-call hpc.inventory
    """
    hosts = _context(pillar).require_valid(CommandExecutionError).inventory
    return {
        name: {"role": h.role, "image": h.image,
               "interfaces": {n: {"name": i.name, "ip": i.ip, "mac": i.mac} for n, i in h.interfaces.items()}}
        for name, h in hosts.items()
    }


def me(pillar=None):
    """
    This minion's own inventory entry (role, interfaces), or an error if it is not declared.

    CLI Example:

    .. code-block:: bash

        salt 'labcn*' hpc.me
    """
    hosts = inventory(pillar)
    if __opts__["id"] not in hosts:
        raise CommandExecutionError(f"minion {__opts__['id']} is not declared in the pillar's nodes")
    return hosts[__opts__["id"]]
