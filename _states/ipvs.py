"""The IPVS table of a director, in the one shape of every state (``hpc_change.converge``)."""

from __future__ import annotations

from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_change

__virtualname__ = "ipvs"


def __virtual__():
    return __virtualname__


def table_applied(name):
    """
    The director's IPVS table holds the pillar's services and real servers (``lvs.services``):
    settings edited in place, never deleted and re-added; services we do not own untouched.
    ``test=True`` lists the exact steps. The weights are the pillar's as health, drains and
    load change them now (``ipvs.overrides``): a highstate never puts a dead or drained real
    server back. On a host that is not a director, nothing to do.

    .. code-block:: yaml

        ipvs-config-ipvs-table_applied:
          ipvs.table_applied:
            - name: lvs services
    """
    # Nothing to change still makes this pillar the last applied one: what a restart restores.
    # The plan's problems (more than half a pool probed dead: kept in) fail the state, said.
    return hpc_change.converge_recorded(name, "IPVS table", __salt__["ipvs.plan"],
                                        lambda: __salt__["ipvs.apply"](), __opts__["test"],
                                        errors=(CommandExecutionError,))


def table_absent(name):
    """
    Every IPVS service we own is gone (with its real servers); nothing else in the table changes.

    .. code-block:: yaml

        ipvs-clean-ipvs-table_absent:
          ipvs.table_absent:
            - name: lvs services
    """
    return hpc_change.converge(name, "IPVS table", lambda: __salt__["ipvs.clean"](test=True)["changes"],
                               lambda _: __salt__["ipvs.clean"]()["errors"], test=__opts__["test"],
                               errors=(CommandExecutionError,))
