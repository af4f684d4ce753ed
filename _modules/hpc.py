"""The cluster pillar, read through its schema: validation and the inventory.

Every subsystem reads the pillar through here, so a bad pillar is reported the
same way everywhere: one line per mistake, with its key path and bad value.
"""

from __future__ import annotations

import logging

from salt.exceptions import CommandExecutionError

import hpc_reload

hpc_reload.forget_changed()  # a sync may have changed our helpers: see hpc_reload

import hpc_pillar

log = logging.getLogger(__name__)
__virtualname__ = "hpc"


def __virtual__():
    return __virtualname__


def _pillar(pillar=None):
    return pillar if pillar is not None else __pillar__.value() if hasattr(__pillar__, "value") else dict(__pillar__)


def validate(pillar=None):
    """
    Validate this minion's pillar against the cluster schema; return the errors, one string each.

    An empty list means the pillar is valid and this minion is declared in ``nodes``.

    CLI Example:

    .. code-block:: bash

        salt '*' hpc.validate
    """
    data = _pillar(pillar)
    errors = [str(e) for e in hpc_pillar.validate(data)]
    if not errors:
        minion = __opts__["id"]
        if minion not in hpc_pillar.inventory(data):
            errors.append(f"nodes: minion {minion} is not declared in any nodeset (got {minion!r})")
    return errors


def inventory(pillar=None):
    """
    Every declared host with its role and addresses per network, expanded from the nodesets.

    CLI Example:

    .. code-block:: bash

        salt-call hpc.inventory
    """
    try:
        hosts = hpc_pillar.inventory(_pillar(pillar))
    except hpc_pillar.PillarInvalid as exc:
        raise CommandExecutionError(f"invalid pillar:\n{exc}") from None
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
