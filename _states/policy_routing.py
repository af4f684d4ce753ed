"""The state of policy routing on a host, in the one shape of every state (``hpc_change.converge``)."""

from __future__ import annotations

from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_change

__virtualname__ = "policy_routing"


def __virtual__():
    return __virtualname__


def _plan():
    planned = __salt__["policy_routing.plan"]()
    return {"changes": planned["changes"], "problems": planned["missing"]}


def applied(name):
    """
    Tables, rules, routes and the nft marking as the pillar's ``policy_routing`` says.

    An empty plan gives result True; ``test=True`` gives result None with the plan as changes;
    otherwise the plan is applied, read back, and anything left (or a user/group this host does
    not know) makes the result False, naming the host, while everything else is applied.

    .. code-block:: yaml

        policy_routing-config-policy_routing-applied:
          policy_routing.applied:
            - name: policy routing
    """
    # Nothing to change still makes this pillar the last applied one (hpc_applied).
    return hpc_change.converge_recorded(name, "policy routing", _plan, lambda: __salt__["policy_routing.apply"](),
                                        __opts__["test"], errors=(CommandExecutionError,))
