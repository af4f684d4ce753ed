"""Diskless nodes seen from the master (issue 12): wake-on-LAN through the boot server."""

from __future__ import annotations

import salt.cache
import salt.client

__virtualname__ = "diskless"


def __virtual__():
    return __virtualname__


def _boot_server():
    """``diskless.server`` as the master's minion data cache has it."""
    cache = salt.cache.factory(__opts__)
    for minion in sorted(cache.list("pillar")):
        pillar = cache.fetch("pillar", minion) or {}
        server = (pillar.get("diskless") or {}).get("server") if isinstance(pillar, dict) else None
        if isinstance(server, str) and server:
            return server
    return None


def wake(nodes, timeout=60):
    """
    Wake the nodes of ``nodes`` (a nodeset): the boot server sends each a magic packet on the
    admin network (``diskless.wake`` there). Nothing is sent when one of them is unknown.

    CLI Example:

    .. code-block:: bash

        salt-run diskless.wake 'labcn[1-2]'
    """
    server = _boot_server()
    if server is None:
        return {"result": False, "comment": "no boot server in the master's copy of the pillar (diskless.server)"}
    with salt.client.LocalClient(mopts=__opts__) as client:
        ret = client.cmd(server, "diskless.wake", [nodes], timeout=timeout, full_return=True)
    reply = ret.get(server)
    if not reply:
        return {"result": False, "comment": f"the boot server {server} did not answer within {timeout} s"}
    if reply.get("retcode", 0) != 0:
        return {"result": False, "comment": str(reply.get("ret"))}
    return {"result": True, "server": server, **reply["ret"]}
