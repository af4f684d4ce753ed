"""The SSH login pool seen and steered from the master: status, drain, undrain (issue 11).

Every director holds its own IPVS table and its own overrides (health, drains); these runners ask
all of them (``lvs.directors`` from the master's copy of the pillar) and say where they disagree.
A drain is kept on the directors (their overrides record): it survives a director restart, a
highstate, and this runner ending early.
"""

from __future__ import annotations

import time

import salt.cache
import salt.client

from hpc_synced import hpc_types

__virtualname__ = "lvs"


def __virtual__():
    return __virtualname__


def _directors():
    """``lvs.directors`` as the master's minion data cache has it (every minion gets the lvs
    section: the first cached pillar that names directors answers)."""
    cache = salt.cache.factory(__opts__)
    for minion in sorted(cache.list("pillar")):
        pillar = cache.fetch("pillar", minion) or {}
        expr = (pillar.get("lvs") or {}).get("directors") if isinstance(pillar, dict) else None
        if isinstance(expr, str) and expr:
            return hpc_types.expand(expr)
    return []


def _call(fun, arg=(), timeout=60):
    directors = _directors()
    if not directors:
        return {}, ["no LVS directors in the master's copy of the pillar (lvs.directors)"]
    with salt.client.LocalClient(mopts=__opts__) as client:
        replies = client.cmd(directors, fun, arg=list(arg), tgt_type="list", timeout=timeout)
    errors = [f"{d}: no answer within {timeout} s" for d in directors if d not in replies]
    errors += [f"{d}: {r}" for d, r in replies.items() if isinstance(r, str)]  # an exception's text
    return {d: r for d, r in replies.items() if not isinstance(r, str)}, errors


def _progress(message):
    __jid_event__.fire_event({"message": message}, "progress")  # noqa: F821 - Salt's runner dunder


def status(timeout=60):
    """
    The pool as every director sees it: per service, which director holds the VIP, and each
    real server's weight, active and inactive connections, health and drain on each director.

    CLI Example:

    .. code-block:: bash

        salt-run lvs.status
    """
    replies, errors = _call("ipvs.status", timeout=timeout)
    report = {"errors": errors, "services": {}}
    for director, reply in sorted(replies.items()):
        for key, svc in reply["services"].items():
            entry = report["services"].setdefault(key, {"vip_holder": [], "real_servers": {}})
            if svc["holds_vip"]:
                entry["vip_holder"].append(director)
            for real, info in svc["real_servers"].items():
                entry["real_servers"].setdefault(real, {})[director] = info
    return report


def drain(host, timeout=600, wait=True, poll=10):
    """
    Drain ``host`` out of the login pool: weight 0 on every director at once (no new login goes
    there, open sessions go on), then its real servers leave the tables once they have no active
    connection, or ``timeout`` seconds passed. With ``wait`` (default) this runner reports the
    connections left every ``poll`` seconds until the drain finished on every director; stopping
    it does not stop the drain. A host that is not a real server of the pool is an error, and
    nothing changes.

    CLI Example:

    .. code-block:: bash

        salt-run lvs.drain labfe2
        salt-run lvs.drain labfe2 timeout=3600 wait=False
    """
    replies, errors = _call("ipvs.drain", arg=[host, f"timeout={timeout}"])
    if errors:
        return {"result": False, "host": host, "errors": errors}
    addresses = sorted({a for r in replies.values() for a in r["addresses"]})
    _progress(f"{host} ({', '.join(addresses)}): weight 0 on {', '.join(sorted(replies))}")
    if not wait:
        return {"result": True, "host": host, "addresses": addresses, "finished": False}
    deadline = time.monotonic() + float(timeout) + 2 * float(poll) + 60
    while time.monotonic() < deadline:
        time.sleep(float(poll))
        replies, errors = _call("ipvs.drains", arg=["advance=True"])
        mine = {d: {a: r[a] for a in addresses if a in r} for d, r in replies.items()}
        active = sum(info["active"] for r in mine.values() for info in r.values())
        done = not errors and all(info.get("removed") for r in mine.values() for info in r.values())
        _progress(f"{host}: {active} active connection(s) left; finished: {done}")
        if done:
            return {"result": True, "host": host, "addresses": addresses, "finished": True}
    return {"result": False, "host": host, "addresses": addresses, "finished": False,
            "errors": errors or [f"not finished on every director {timeout} s after it started"]}


def undrain(host):
    """
    Cancel ``host``'s drain on every director: its real servers come back with the weight the
    pillar and the health probes give them.

    CLI Example:

    .. code-block:: bash

        salt-run lvs.undrain labfe2
    """
    replies, errors = _call("ipvs.undrain", arg=[host])
    return {"result": not errors, "host": host, "errors": errors,
            "changes": {d: r["changes"] for d, r in replies.items()}}
