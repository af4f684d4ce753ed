"""What the master does about our minions' events: prove the sender, then act on that minion only.

The reactor files (salt/reactor/*.sls) hand every ``hpc/...`` event to a function here. Each one
first verifies the event's signature (hpc_signed) against the key the master accepted for the
minion it claims to come from; an event that fails is dropped, and recorded as
``hpc/security/rejected`` plus a master log line naming the claim, the reason and the real sender
when the master knows it. A payload's own ``id`` is never used.
"""

from __future__ import annotations

import logging
import math
import threading
import time

import salt.cache
import salt.client
import salt.utils.event

from hpc_synced import hpc_batch, hpc_lvs_load, hpc_reactor_memory, hpc_signed, hpc_types

log = logging.getLogger(__name__)
__virtualname__ = "hpc_react"
REJECTED = hpc_signed.REJECTED
# A storm's link-ups gather into one heal job: until HEAL_QUIET seconds pass without another,
# at most HEAL_CAP seconds (hpc_batch; bench-storm: jobs per event).
HEAL_QUIET = 0.05
HEAL_CAP = 0.5
# Both LVS directors probe every real server; their reports of one change arrive within about a
# second of each other on an idle lab, but a TCG director busy with a job can be 3 s late (CI,
# 2026-12-03: load average 14 on 2 CPUs). The master waits this long before asking a silent
# director to re-probe: a spurious recheck costs that director ~8 s of CPU, and a director whose
# probes really stopped is asked only this much later (its own beacon is the fast path).
AGREE_WINDOW = 8.0
# Frontends' load reports that move a weight within this many seconds of each other become one
# ipvs.set_load job on the directors (each job costs a TCG director seconds of CPU).
LOAD_BATCH = 1.0
# How the master brings a dead daemon back on its minion: keepalived first drops the virtual
# addresses a SIGKILLed keepalived left behind (else both routers hold the gateway's VIP).
REVIVE = {"keepalived": "keepalived.revive"}


_CLIENT: dict = {}  # one LocalClient until the reactor's next client refresh: making one costs ~0.1 s
_CLIENT_LOCK = threading.Lock()
# Each director's last report per real server, and the reweighers' memory, live in
# hpc_reactor_memory: a dict here would be emptied by the reactor's client refresh (its module
# docstring says why). A director whose last word already matches a report is not silent (it said
# so earlier, outside the window); one that never reported a server holds it up. Lost on a master
# restart: a director left at down is then not asked on an up claim, and its own probes bring the
# server back (rise); a down claim asks it, the safe side.
RECHECKED = "rechecked"  # asked to re-probe, verdict unknown here: the next claim either way asks it again


def __virtual__():
    return __virtualname__


def _publish(tgt, fun, **kwargs):
    """``LocalClient.cmd_async``, on a client kept for the life of this module."""
    with _CLIENT_LOCK:
        if "client" not in _CLIENT:
            _CLIENT["client"] = salt.client.LocalClient(mopts=__opts__)
        return _CLIENT["client"].cmd_async(tgt, fun, **kwargs)


def _fire(tag, data):
    with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=False) as bus:
        bus.fire_event(data, tag)


def _verified(tag, data):
    """The verdict on an event; a refused one is recorded here."""
    verdict = hpc_signed.verifier(__opts__["pki_dir"]).verify(tag, data or {})
    if not verdict.ok:
        sender = verdict.sender or "unknown (batch form: the master names no sender)"
        log.warning("hpc: dropped %s claiming to come from %s: %s; sent by %s",
                    tag, verdict.minion, verdict.reason, sender)
        _fire(REJECTED, {"tag": tag, "claimed": verdict.minion, "reason": verdict.reason, "sender": verdict.sender})
    return verdict


def verify(tag, data):
    """
    Whether an event's sender is proven, and who it is: ``ok``, ``minion``, ``reason``,
    ``sender`` (the master-set id, single form only). Records a refusal like the reactions do.

    CLI Example:

    .. code-block:: bash

        salt-run hpc_react.verify tag=hpc/net/link/ib0/up data='{...}'
    """
    verdict = _verified(tag, data)
    return {"ok": verdict.ok, "minion": verdict.minion, "reason": verdict.reason, "sender": verdict.sender}


def link(tag, data, quiet=HEAL_QUIET, cap=HEAL_CAP):
    """
    ``hpc/net/link/<iface>/up`` from a verified minion: re-apply its policy routing
    (``policy_routing.heal``, which confirms with ``hpc/net/routes/restored``). The link-ups of a
    storm go out as one list-targeted job: those that keep coming with less than ``quiet``
    seconds between them, for at most ``cap`` seconds.

    CLI Example:

    .. code-block:: bash

        salt-run hpc_react.link tag=hpc/net/link/ib0/up data='{...}'
    """
    verdict = _verified(tag, data)
    if not verdict.ok:
        return {"acted": False, "reason": verdict.reason}
    if not tag.endswith("/up"):
        return {"acted": False, "minion": verdict.minion, "reason": "link down: the heal waits for up"}
    batch = hpc_batch.gather(("heal", tag), verdict.minion, float(quiet), float(cap))
    if batch is None:
        return {"acted": True, "minion": verdict.minion, "batched": True}
    jid = _publish(batch, "policy_routing.heal", tgt_type="list", kwarg={"reason": tag})
    log.info("hpc: %s: policy_routing.heal on %s (job %s)", tag, ",".join(batch), jid)
    return {"acted": True, "minion": verdict.minion, "minions": batch, "jid": jid}


def daemon(tag, data):
    """
    ``hpc/daemon/<service>/dead`` from a verified minion: start that service again there
    (keepalived through ``keepalived.revive``). ``.../alive`` is only recorded.

    CLI Example:

    .. code-block:: bash

        salt-run hpc_react.daemon tag=hpc/daemon/keepalived/dead data='{...}'
    """
    verdict = _verified(tag, data)
    if not verdict.ok:
        return {"acted": False, "reason": verdict.reason}
    service = tag.split("/")[2]
    if not tag.endswith("/dead"):
        log.info("hpc: %s on %s", tag, verdict.minion)
        return {"acted": False, "minion": verdict.minion, "reason": "recorded"}
    fun = REVIVE.get(service, "service.start")
    jid = _publish(verdict.minion, fun, arg=[] if fun in REVIVE.values() else [service])
    log.warning("hpc: %s died on %s: %s (job %s)", service, verdict.minion, fun, jid)
    return {"acted": True, "minion": verdict.minion, "function": fun, "jid": jid}


def vrrp(tag, data):
    """
    ``hpc/net/vrrp/<instance>/<state>`` from a verified minion: recorded in the master's log
    (keepalived already moved the VIP).

    CLI Example:

    .. code-block:: bash

        salt-run hpc_react.vrrp tag=hpc/net/vrrp/natgw/MASTER data='{...}'
    """
    verdict = _verified(tag, data)
    if verdict.ok:
        log.info("hpc: VRRP %s on %s", tag, verdict.minion)
    return {"acted": False, "minion": verdict.minion, "reason": verdict.reason}


def _lvs_pillar(minion):
    """The ``lvs`` section of the master's own copy of ``minion``'s pillar (Salt's minion data
    cache, written at each pillar compile: not the event's word); {} when unknown."""
    pillar = salt.cache.factory(__opts__).fetch("pillar", minion) or {}
    lvs = pillar.get("lvs") if isinstance(pillar, dict) else None
    return lvs if isinstance(lvs, dict) else {}


def _directors(minion):
    """The LVS directors as the master's copy of ``minion``'s pillar names them; [] when unknown."""
    expr = _lvs_pillar(minion).get("directors")
    try:
        return hpc_types.expand(expr) if isinstance(expr, str) and expr else []
    except Exception:  # noqa: BLE001 - a pillar the gate would refuse: no director known
        return []


def _real_servers(minion):
    """The hosts of every lvs service's real servers, as the master's copy of ``minion``'s
    pillar names them."""
    services = _lvs_pillar(minion).get("services") or []
    return sorted({r.get("host") for s in services if isinstance(s, dict)
                   for r in s.get("real_servers") or [] if isinstance(r, dict) and r.get("host")})


def _refuse(tag, verdict, reason):
    log.warning("hpc: dropped %s: %s", tag, reason)
    _fire(REJECTED, {"tag": tag, "claimed": verdict.minion, "reason": reason, "sender": verdict.sender})
    return {"acted": False, "minion": verdict.minion, "reason": reason}


def lvs_health(tag, data, window=AGREE_WINDOW):
    """
    ``hpc/lvs/health/<address>/<down|up>`` from a verified LVS director, sent once its own table
    says so (its beacon set the weight first). Every director probes every real server itself,
    so their reports of one change arrive within a second or so of each other: the master waits
    ``window`` seconds for them, and asks only the directors that stayed silent to re-probe that
    server now and apply their own verdict (``ipvs.recheck``): no table changes on another
    director's word, and two directors that agree cost no job. The reports of one state that
    arrive within a window, whichever server they name, cost one job per set of silent directors.
    A director whose last report of that server (kept by the master) already says the same is not
    silent: it said so earlier.
    A sender that is not a director in the master's copy of its pillar is refused and recorded
    like a bad signature.

    CLI Example:

    .. code-block:: bash

        salt-run hpc_react.lvs_health tag=hpc/lvs/health/10.12.0.22/down data='{...}'
    """
    verdict = _verified(tag, data)
    if not verdict.ok:
        return {"acted": False, "reason": verdict.reason}
    directors = _directors(verdict.minion)
    if verdict.minion not in directors:
        return _refuse(tag, verdict, f"{verdict.minion} is not an LVS director "
                                     f"(lvs.directors: {', '.join(directors) or 'none'})")
    address, state = ([*tag.split("/")[3:], "", ""])[:2]
    if state not in ("up", "down"):
        return {"acted": False, "minion": verdict.minion, "reason": f"not a health report: {tag}"}
    with hpc_reactor_memory.LAST_SEEN_LOCK:
        hpc_reactor_memory.LAST_SEEN.setdefault(address, {})[verdict.minion] = state
    # One batch per state, not per server: a director cut off from its real servers reports them
    # all at once, and each job costs a TCG director seconds of CPU (CI, 2026-12-03: a director
    # busy with a queue of rechecks answered a job only after 120 s).
    batch = hpc_batch.gather(("lvs_health", state), f"{address} {verdict.minion}", float(window), float(window))
    if batch is None:
        return {"acted": False, "minion": verdict.minion, "batched": True}
    reported: dict[str, list[str]] = {}
    for item in batch:
        server, reporter = item.split(" ", 1)
        reported.setdefault(server, []).append(reporter)
    asked: dict[tuple[str, ...], list[str]] = {}
    withdrawn = []
    with hpc_reactor_memory.LAST_SEEN_LOCK:
        for server, by in reported.items():
            last = hpc_reactor_memory.LAST_SEEN.get(server, {})
            # A director that said the opposite since (its probes flapped, e.g. a TCG director
            # starved of CPU timing out) withdrew its claim: no director is asked on its word.
            if all(last.get(r) != state for r in by):
                withdrawn.append(server)
                continue
            # A director that never reported this server holds it up: every table starts with
            # the pillar's weights, and a director reports transitions only.
            silent = tuple(d for d in directors if last.get(d, "up") != state)
            if silent:
                asked.setdefault(silent, []).append(server)
    reporters = sorted({r for rs in reported.values() for r in rs})
    if withdrawn:
        log.info("hpc: %s of %s: withdrawn by %s within %.0f s (it flapped): nobody asked", state,
                 ",".join(sorted(withdrawn)), ",".join(reporters), float(window))
    if not asked:
        reason = "every director says so" if not withdrawn else "withdrawn by its reporter"
        log.info("hpc: %s: %s (%s reported it now)", tag, reason, ",".join(reporters))
        return {"acted": False, "reporters": reporters, "reason": reason, "withdrawn": sorted(withdrawn)}
    with hpc_reactor_memory.LAST_SEEN_LOCK:  # its verdict comes back in a job's return, not a report: unknown
        for silent, servers in asked.items():
            for server in servers:
                hpc_reactor_memory.LAST_SEEN.setdefault(server, {}).update(dict.fromkeys(silent, RECHECKED))
    jids = {}
    for silent, servers in sorted(asked.items()):
        jids[",".join(silent)] = jid = _publish(list(silent), "ipvs.recheck", tgt_type="list",
                                               kwarg={"addresses": sorted(servers)})
        log.warning("hpc: %s of %s reported by %s only: ipvs.recheck on %s (job %s)", state, ",".join(servers),
                    ",".join(sorted({r for s in servers for r in reported[s]})), ",".join(silent), jid)
    return {"acted": True, "reporters": reporters, "rechecked": sorted({d for s in asked for d in s}),
            "addresses": sorted(s for servers in asked.values() for s in servers), "jids": jids,
            "withdrawn": sorted(withdrawn)}


def _reweigher(policy):
    with hpc_reactor_memory.REWEIGHERS_LOCK:
        return hpc_reactor_memory.REWEIGHERS.setdefault(policy, hpc_lvs_load.Reweigher(policy))


def lvs_load(tag, data, batch=LOAD_BATCH):
    """
    ``hpc/lvs/load/<minion>`` from a verified frontend's ``hpc_frontend_load`` beacon: its load
    per core. The sender (verified, not the tag or the payload) must be a real server of the
    pool in the master's copy of its pillar. hpc_lvs_load decides whether its weight moves
    (smoothing, the ``lvs.load`` policy, a dead-band, a rate limit); the factors that move
    within ``batch`` seconds go to every director in one ``ipvs.set_load`` job.

    CLI Example:

    .. code-block:: bash

        salt-run hpc_react.lvs_load tag=hpc/lvs/load/labfe2 data='{...}'
    """
    verdict = _verified(tag, data)
    if not verdict.ok:
        return {"acted": False, "reason": verdict.reason}
    pool = _real_servers(verdict.minion)
    if verdict.minion not in pool:
        return _refuse(tag, verdict, f"{verdict.minion} is not a real server of the login pool "
                                     f"(real servers: {', '.join(pool) or 'none'})")
    settings = _lvs_pillar(verdict.minion).get("load") or {}
    if settings.get("enabled") is False:
        return {"acted": False, "minion": verdict.minion, "reason": "lvs.load.enabled is false"}
    per_core = hpc_signed.payload_of(data or {})[0].get("per_core")
    if not isinstance(per_core, int | float) or not math.isfinite(per_core) or per_core < 0:
        return _refuse(tag, verdict, f"per_core: not a load (got {per_core!r})")
    reweigher = _reweigher(hpc_lvs_load.Policy.from_pillar(settings))
    factor = reweigher.observe(verdict.minion, float(per_core), time.monotonic())
    if factor is None:
        return {"acted": False, "minion": verdict.minion, "smoothed": reweigher.smoothed(verdict.minion)}
    moved = hpc_batch.gather(("lvs_load",), f"{verdict.minion}={factor}", float(batch), float(batch) * 5)
    if moved is None:
        return {"acted": False, "minion": verdict.minion, "factor": factor, "batched": True}
    loads = {host: float(value) for host, value in (item.split("=", 1) for item in moved)}
    directors = _directors(verdict.minion)
    jid = _publish(directors, "ipvs.set_load", tgt_type="list", kwarg={"loads": loads})
    log.info("hpc: load factors %s: ipvs.set_load on %s (job %s)", loads, ",".join(directors), jid)
    return {"acted": True, "loads": loads, "directors": directors, "jid": jid}
