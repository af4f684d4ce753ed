"""Policy routing across the cluster, seen from the master."""

from __future__ import annotations

import salt.client

__virtualname__ = "routing"


def __virtual__():
    return __virtualname__


def status(tgt="*", tgt_type="glob", timeout=10):
    """
    Per node, whether its routing tables, rules, routes and marks match the pillar: ``in_sync``,
    what differs (``changes``), and users or groups it does not know (``missing``). Nodes that
    take no part in policy routing are left out; nodes that did not answer are listed as such.

    CLI Example:

    .. code-block:: bash

        salt-run routing.status
        salt-run routing.status tgt='labcn*'
    """
    with salt.client.LocalClient(mopts=__opts__) as client:
        replies = client.cmd(tgt, "policy_routing.status", tgt_type=tgt_type, timeout=timeout)
        expected = client.cmd(tgt, "test.ping", tgt_type=tgt_type, timeout=timeout)
    report = {}
    for minion in sorted(set(expected) | set(replies)):
        reply = replies.get(minion)
        if not isinstance(reply, dict):
            report[minion] = {"answered": False, "error": reply}
        elif reply.get("routed"):
            report[minion] = {"in_sync": reply["in_sync"], "changes": reply["changes"],
                              "missing": reply["missing"]}
    return report
