"""Diskless nodes seen from the master (issue 12): wake-on-LAN through the boot server, the
registration of new nodes from its DHCP leases, and their minion keys.

Keys: a diskless node's root is RAM, so it makes a new minion key at every boot. The master
accepts it (``auth``, a reaction to Salt's own ``salt/auth`` events) only when the boot grain the
node sent with it ("<name> <boot MAC>", written by the image's hpcnet-identity) is its own id's
pair in the inventory; and it replaces a registered node's accepted key by the new one only when
the holder of the old key does not answer (the node really rebooted: a running node's key is
never taken over). Salt's ``autosign_grains_dir`` is not used: it does not tie the grain to the
key's id. docs/diskless.md has the threat model.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import salt.cache
import salt.client
import salt.key
import salt.utils.event

from hpc_synced import hpc_batch, hpc_diskless, hpc_image_build, hpc_pillar, hpc_register, hpc_signed, hpc_types

log = logging.getLogger(__name__)

__virtualname__ = "diskless"


def __virtual__():
    return __virtualname__


def _boot_server(cache=None):
    """``diskless.server`` as the master's minion data cache has it."""
    cache = cache or salt.cache.factory(__opts__)
    for minion in sorted(cache.list("pillar")):
        pillar = cache.fetch("pillar", minion) or {}
        server = (pillar.get("diskless") or {}).get("server") if isinstance(pillar, dict) else None
        if isinstance(server, str) and server:
            return server
    return None


# A boot storm's keys: gathered for this long (quiet gap, cap) into one ping of the old holders.
KEYS_QUIET, KEYS_CAP = 0.5, 3.0
SEP = "\0"  # between an id and its key in a batch item
# How long the holder of a node's old key has to answer test.ping before its key is replaced.
OLD_KEY_PING = 5
# For the life of the reactor's runner: Salt's cache object (making one loads its driver, ~0.1 s),
# the boot server and its pillar's cache time, and the registered pairs read from that pillar.
_MEMO: dict = {}
_MEMO_LOCK = threading.Lock()


def _allowed():
    """The registered diskless nodes' "<name> <boot MAC>" pairs, from the master's copy of the
    boot server's pillar: read again only when that pillar was refreshed (one stat per key), so a
    boot storm of a thousand nodes reads the inventory once, not once per key."""
    with _MEMO_LOCK:
        cache = _MEMO.setdefault("cache", salt.cache.factory(__opts__))
        server = _MEMO.get("server")
        if server is not None and cache.updated("pillar", server) == _MEMO["stamp"]:
            return _MEMO["values"]
        server = _boot_server(cache)
        values = frozenset()
        if server is not None:
            pillar = cache.fetch("pillar", server) or {}
            try:
                sections = hpc_pillar.load(pillar)
                inventory = hpc_pillar.inventory(pillar)
                overrides = [hpc_types.expand(o.nodes) for o in sections["diskless"].overrides]
                nodes = hpc_register.diskless_nodes(inventory, overrides)
                values = frozenset(hpc_register.autosign_values(inventory, hpc_diskless.BOOT_NETWORK, nodes))
            except Exception as err:  # noqa: BLE001 - an invalid pillar signs nothing
                log.warning("hpc: no diskless key is accepted: the boot server's pillar does not load: %s", err)
        _MEMO.update(server=server, stamp=cache.updated("pillar", server) if server else None, values=values)
        return values


def _fire(tag, data):
    with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=False) as bus:
        bus.fire_event(data, tag)


def _key_store():
    return salt.key.get_key(__opts__)


def auth(tag, data, quiet=KEYS_QUIET, cap=KEYS_CAP, ping=OLD_KEY_PING):
    """
    Salt's ``salt/auth`` event (the master has ``auth_events_autosign_grains: [pend, denied]``):
    a new key of a registered diskless node is accepted; the key of one that booted again (Salt
    denied it: the id has another key) replaces the old one once the old key's holder does not
    answer ``test.ping`` within ``ping`` seconds. Only the very key Salt holds for that id is
    acted on (the event's ``pub`` must match it: an event a minion forged acts on nothing it did
    not really submit). Keys that claim no diskless identity are left to the admin.

    CLI Example:

    .. code-block:: bash

        salt-run diskless.auth tag=salt/auth data='{"act": "pend", "id": "labcn1", ...}'
    """
    data = data or {}
    act, minion, pub = data.get("act"), data.get("id"), data.get("pub")
    if act not in ("pend", "denied") or not isinstance(minion, str):
        return {"acted": False, "reason": f"{act}: nothing to do"}
    verdict = hpc_register.key_verdict(minion, data.get("autosign_grains"), _allowed())
    if not verdict.ok:
        if verdict.ours:
            log.warning("hpc: key of %s left %s: %s", minion, "pending" if act == "pend" else "denied", verdict.reason)
            _fire(hpc_signed.REJECTED, {"tag": tag, "claimed": minion, "reason": verdict.reason, "sender": None})
        return {"acted": False, "minion": minion, "reason": verdict.reason}
    # A boot storm's keys are handled a batch at a time: Salt's key store lists every key at each
    # accept or delete, so one call per node would cost O(nodes) each, O(nodes^2) in all.
    batch = hpc_batch.gather(("diskless-keys", act), f"{minion}{SEP}{pub}", float(quiet), float(cap))
    if batch is None:
        return {"acted": False, "minion": minion, "batched": True}
    claims = [item.split(SEP, 1) for item in batch]
    with _key_store() as keys:
        held = [m for m, key in claims if _holds(keys, act, m, key)]
        forged = sorted({m for m, _ in claims} - set(held))
        for other in forged:
            log.warning("hpc: salt/auth for %s names a key Salt does not hold as %s: ignored", other, act)
        if not held:
            return {"acted": False, "ignored": forged, "reason": "not the key Salt holds"}
        if act == "denied":
            return {**_replace(keys, held, ping), "ignored": forged}
        states = keys.accept(match_dict={"minions_pre": held})  # Salt refuses an invalid key and logs why
        accepted = sorted(set(states.get("minions", [])) & set(held))
        if accepted:
            log.warning("hpc: accepted the keys of registered diskless nodes %s", ",".join(accepted))
        return {"acted": bool(accepted), "accepted": accepted, "refused": sorted(set(held) - set(accepted)),
                "ignored": forged}


def _holds(keys, act, minion, pub):
    """Whether ``pub`` is the key Salt holds for ``minion`` as pending (``pend``) or among its
    denied ones (``denied``): one read of that id's entry, not a listing of every key."""
    if act == "pend":
        entry = keys.cache.fetch("keys", minion) or {}
        return entry.get("state") == "pending" and entry.get("pub") == pub
    return pub in (keys.cache.fetch("denied_keys", minion) or [])


def _replace(keys, minions, ping):
    """Delete the accepted key of each of ``minions`` whose holder does not answer: its next
    authentication is a new key, pending, which ``auth`` accepts on the same evidence."""
    with salt.client.LocalClient(mopts=__opts__) as client:
        answers = client.cmd(minions, "test.ping", tgt_type="list", timeout=ping) or {}
    # Salt lists every targeted minion, a silent one with a message ("Minion did not return") or
    # False: only True is an answer (seen in the lab: every old key looked alive).
    alive = {m for m, answer in answers.items() if answer is True}
    replaced = [m for m in minions if m not in alive]
    for minion in sorted(alive):
        log.warning("hpc: %s booted with a new key while its old key still answers: old key kept", minion)
        _fire(hpc_signed.REJECTED, {"tag": "salt/auth", "claimed": minion, "sender": None,
                         "reason": "a second key for a running diskless node"})
    if replaced:
        keys.delete_key(match_dict={"minions": replaced, "minions_denied": replaced})
        log.warning("hpc: %s booted again with a new key: old key deleted, the new one is accepted at its "
                    "next authentication", ",".join(replaced))
    return {"acted": bool(replaced), "replaced": replaced, "kept": sorted(alive)}


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


def _progress(message):
    __jid_event__.fire_event({"message": message}, "progress")  # noqa: F821 - Salt's runner dunder


def build(image, test=False, timeout=7200):
    """
    Build ``image`` on the boot server (its ``diskless.build``: the phases whose inputs changed,
    the new version packed, old ones pruned), showing the build's output as it comes: each
    phase's start at once, the rest a second's worth at a time. ``test=True`` shows the steps
    only. A failed phase script fails the run, naming the script with its output; the versions
    in service are untouched.

    CLI Example:

    .. code-block:: bash

        salt-run diskless.build compute test=True
        salt-run diskless.build compute
    """
    server = _boot_server()
    if server is None:
        return {"result": False, "comment": "no boot server in the master's copy of the pillar (diskless.server)"}
    with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=True) as bus, \
            salt.client.LocalClient(mopts=__opts__) as client:
        jid = client.cmd_async(server, "diskless.build", [image], kwarg={"test": bool(test)})
        if not jid:
            return {"result": False, "comment": f"could not publish diskless.build to {server}"}
        return _follow(bus, jid, server, hpc_image_build.PROGRESS_TAG.format(image=image), float(timeout))


def _follow(bus, jid, server, tag, timeout):
    """Show ``server``'s progress events (the master-verified sender only) until its return."""
    deadline, done = time.monotonic() + timeout, f"salt/job/{jid}/ret/{server}"
    while time.monotonic() < deadline:
        event = bus.get_event(wait=1, full=True)
        if not event:
            continue
        data = event.get("data") or {}
        if event.get("tag") == tag and data.get("id") == server:
            for line in (data.get("data") or {}).get("lines") or []:
                _progress(line)
        elif event.get("tag") == done:
            if data.get("success") and data.get("retcode", 0) == 0:
                return {"result": True, "server": server, **data["return"]}
            return {"result": False, "server": server, "comment": data.get("return")}
    return {"result": False, "server": server,
            "comment": f"{server} did not finish within {timeout:.0f} s; the build may still run "
                       f"(salt-run jobs.lookup_jid {jid})"}


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
