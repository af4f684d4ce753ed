"""Diskless nodes seen from the master (issue 12): wake-on-LAN through the boot server, and the
registration of new nodes from its DHCP leases."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import salt.cache
import salt.client

from hpc_synced import hpc_pillar, hpc_register, hpc_types

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


def _nodes_file(opts):
    """The pillar file holding the top-level ``nodes:`` list (the inventory)."""
    for root in opts.get("pillar_roots", {}).get("base", []):
        for path in sorted(Path(root).rglob("*.sls")):
            if re.search(r"(?m)^nodes:\s*(#.*)?$", path.read_text(errors="replace")):
                return path
    return None


def register(nodeset, role, image=None, first_ip=None, interface=None, network="admin", write=False, timeout=60):
    """
    Name the machines the boot server's DHCP leases show and the inventory lacks (seed 002's
    ``kestrel-nodes --register``): in the order they took their lease, the free names of
    ``nodeset`` and the free addresses after the highest one ``role`` has on ``network`` (or from
    ``first_ip``). Shows the proposal; with ``write=True`` appends the node groups to the pillar's
    inventory file (comments kept) and commits it to the pillar's git repository, naming the
    nodes. A MAC, name or address already in the inventory is never proposed. Unknown machines
    get a lease only when ``diskless.discovery`` is set.

    CLI Example:

    .. code-block:: bash

        salt-run diskless.register 'labcn[3-8]' cn image=compute
        salt-run diskless.register 'labcn[3-8]' cn image=compute write=True
    """
    server = _boot_server()
    if server is None:
        return {"result": False, "comment": "no boot server in the master's copy of the pillar (diskless.server)"}
    pillar = salt.cache.factory(__opts__).fetch("pillar", server) or {}
    with salt.client.LocalClient(mopts=__opts__) as client:
        reply = client.cmd(server, "diskless.leases", timeout=timeout, full_return=True).get(server)
    if not reply or reply.get("retcode", 0) != 0:
        return {"result": False, "comment": f"could not read the leases of {server}: {reply}"}
    inventory = hpc_pillar.inventory(pillar)
    try:
        cidr = pillar["networks"][network]["cidr"]
        if interface is None:
            interface = next(h.interfaces[network].name for h in inventory.values()
                             if h.role == role and network in h.interfaces)
        found = hpc_register.propose(hpc_register.parse_leases(reply["ret"]), inventory,
                                     hpc_types.expand(nodeset), role, network, cidr, first_ip)
    except (KeyError, StopIteration):
        return {"result": False, "comment": f"no {network} network, or no {role} node to take the interface "
                                            "name from (give interface=)"}
    except ValueError as err:
        return {"result": False, "comment": str(err)}
    proposal = {r.name: {"mac": r.mac, "ip": r.ip} for r in found}
    if not found:
        return {"result": True, "comment": "no lease of an unknown machine", "nodes": {}}
    if not write:
        return {"result": None, "comment": "would register (write=True to do it)", "nodes": proposal}
    return _write(found, role, network, interface, image, proposal)


def _write(found, role, network, interface, image, proposal):
    path = _nodes_file(__opts__)
    if path is None:
        return {"result": False, "comment": "no pillar file with a top-level 'nodes:' list in pillar_roots"}
    try:
        edited = hpc_register.append_groups(path.read_text(), hpc_register.groups(found, role, network,
                                                                                  interface, image))
    except ValueError as err:
        return {"result": False, "comment": f"{path}: {err}"}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(edited)
    os.replace(tmp, path)
    names = ", ".join(f"{r.name} ({r.mac}, {r.ip})" for r in found)
    git = ["git", "-C", str(path.parent)]
    if subprocess.run([*git, "rev-parse", "--git-dir"], capture_output=True).returncode != 0:
        return {"result": True, "comment": f"{path}: registered {names}; not a git repository: not committed",
                "nodes": proposal}
    if subprocess.run([*git, "config", "user.email"], capture_output=True).returncode != 0:
        git += ["-c", "user.name=salt-run diskless.register", "-c", "user.email=root@localhost"]  # no identity set
    subprocess.run([*git, "add", path.name], check=True, capture_output=True)
    commit = subprocess.run([*git, "commit", "-q", "-m", f"Register {names} from the boot server's DHCP leases",
                             "--", path.name], capture_output=True, text=True)
    if commit.returncode != 0:
        return {"result": False, "comment": f"{path} written but not committed: {commit.stderr.strip()}",
                "nodes": proposal}
    return {"result": True, "comment": f"{path}: registered and committed {names}", "nodes": proposal}
