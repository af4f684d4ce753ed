"""The state of policy routing on a host: one shape (read, plan, apply, read again)."""

from __future__ import annotations

__virtualname__ = "policy_routing"


def __virtual__():
    return __virtualname__


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
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    planned = __salt__["policy_routing.plan"]()
    missing = planned["missing"]
    if not planned["changes"]:
        ret["result"] = not missing
        ret["comment"] = "\n".join(missing) or "Policy routing is as the pillar says"
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = {"plan": planned["changes"]}
        ret["comment"] = "\n".join(["Policy routing would change"] + missing)
        return ret
    result = __salt__["policy_routing.apply"]()
    ret["changes"] = {"applied": result["changes"]}
    problems = result["errors"] + result["missing"]
    ret["result"] = not problems
    ret["comment"] = "\n".join(problems) or "Policy routing applied"
    return ret
