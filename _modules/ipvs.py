"""The IPVS table of an LVS director (seeds 000 and 001): the pillar's virtual services and their
real servers, in the kernel through generic netlink (``hpc_ipvs_kernel``), planned by the pure
planner ``hpc_ipvs``. Only services we own are touched: the pillar's, and those an earlier apply
made (recorded by ``hpc_applied``); a service made by hand on another VIP stays as it is.

keepalived holds the VIP (VRRP only); this module owns every IPVS entry. On a host that is not
a director and never was, nothing here opens an IPVS socket.
"""

from __future__ import annotations

import os
import time

from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_applied, hpc_context, hpc_health, hpc_ipvs, hpc_ipvs_kernel, hpc_lvs_weights

__virtualname__ = "ipvs"
LOCK = "/run/hpcnet-ipvs.lock"  # every apply of the IPVS table on a director holds it
SUBSYSTEM = hpc_ipvs.SUBSYSTEM


def __virtual__():
    return __virtualname__


def _ctx():
    return hpc_context.load(__context__, __pillar__, __opts__, CommandExecutionError)


def _pillar_spec():
    """(spec, pillar digest): this host's table as the pillar says (empty off the directors)."""
    ctx = _ctx()
    lvs = ctx.sections["lvs"]
    if not ctx.member["director"]:
        return {"table": ""}, ctx.digest
    return {"table": hpc_ipvs.desired(lvs, ctx.inventory, host=ctx.host).text()}, ctx.digest


def _record():
    return hpc_applied.load(__opts__["cachedir"], SUBSYSTEM) or {}


def _overrides():
    return hpc_lvs_weights.Overrides.from_record(hpc_applied.load(__opts__["cachedir"], hpc_lvs_weights.SUBSYSTEM))


def _handle():
    try:
        return hpc_ipvs_kernel.NetlinkIpvs()
    except OSError as exc:
        raise CommandExecutionError(f"IPVS: {exc}") from None


def _load_modules(table):
    """IPVS and the table's schedulers loaded (modprobe, where /sys/module lacks them). Here, not
    in cmd.run states: a state's first ``unless`` costs 1.5 s on a lab host and 29 s in a TCG
    director (Salt 3008.3, measured), and the kernel would load a scheduler itself only where
    its own modprobe works."""
    for module in hpc_ipvs.kernel_modules(table):
        if os.path.isdir(f"/sys/module/{module}"):
            continue
        out = __salt__["cmd.run_all"](["modprobe", module], python_shell=False, ignore_retcode=True)
        if out["retcode"] != 0:
            raise CommandExecutionError(f"IPVS: modprobe {module} failed: {out['stderr'].strip()}")


# A persistence template pointing at a real server of weight 0 (dead or drained) would keep
# sending that client there; with this, IPVS expires such templates and the client is scheduled
# again. Per network namespace, present once ip_vs is loaded.
QUIESCENT = "/proc/sys/net/ipv4/vs/expire_quiescent_template"


def _quiescent_step():
    """The sysctl step when it is not set yet (as a Change, so test=True shows it)."""
    try:
        with open(QUIESCENT, encoding="ascii") as fh:
            if fh.read().strip() == "1":
                return []
    except OSError:
        pass  # ip_vs not loaded yet: the apply loads it, then sets this
    return [hpc_ipvs.Change("update", "sysctl", "net.ipv4.vs.expire_quiescent_template", new=1,
                            summary="net.ipv4.vs.expire_quiescent_template = 1")]


def _set_quiescent():
    try:
        with open(QUIESCENT, "w", encoding="ascii") as fh:
            fh.write("1\n")
    except OSError as exc:
        return [f"net.ipv4.vs.expire_quiescent_template: {exc}"]
    return []


def _apply_spec(spec, digest, test, source, also_owned=()):
    """Plan the spec's table, with the weights health, drains and load give it now
    (``hpc_lvs_weights``), against the kernel; apply it unless ``test``, read back, record the
    spec (the pillar's weights: the overrides are kept apart). Ours: the spec's services, those
    recorded, and ``also_owned``."""
    want, problems = hpc_lvs_weights.weighted(hpc_ipvs.parse_rules(spec["table"]), _overrides())
    owned = set(_record().get("owned", [])) | set(also_owned)
    if not want.services and not want.daemons and not owned:
        return {"changes": [], "errors": [], "problems": [], "applied": False}  # never a director: no IPVS socket
    if want.services and not test:
        _load_modules(want)
    handle = _handle()
    try:
        steps = (_quiescent_step() if want.services else []) + hpc_ipvs.plan(want, handle.read(), owned)
        errors = []
        if steps and not test:
            errors = _set_quiescent() if any(c.kind == "sysctl" for c in steps) else []
            errors += hpc_ipvs_kernel.apply(handle, [c for c in steps if c.kind != "sysctl"])
            have = handle.read()
            errors += [f"still differs after applying: {c.describe()}" for c in hpc_ipvs.plan(want, have, owned)]
            # A service we could not delete is still ours: the next apply tries again.
            owned &= {s.key() for s in have.services}
    finally:
        handle.close()
    if not test:
        hpc_applied.save(__opts__["cachedir"], SUBSYSTEM, {
            "spec": spec, "owned": sorted(owned | {s.key() for s in want.services}),
            "pillar_digest": digest, "source": source, "applied_at": time.time()})
    return {"changes": [c.describe() for c in steps], "errors": errors, "problems": problems,
            "applied": bool(steps) and not test}


def is_director():
    """
    True when this host is one of ``lvs.directors`` in a valid pillar.

    CLI Example:

    .. code-block:: bash

        salt '*' ipvs.is_director
    """
    return bool(_ctx().member["director"])


def kernel_modules():
    """
    The kernel modules this director's table needs: ``ip_vs`` and the schedulers its services
    use (``ip_vs_wlc``...); empty off the directors. What modules-load.d loads at boot.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.kernel_modules
    """
    spec = _pillar_spec()[0]
    return hpc_ipvs.kernel_modules(hpc_ipvs.parse_rules(spec["table"])) if spec["table"] else []


def plan():
    """
    What applying the pillar would change in this director's IPVS table, step by step
    (``{"changes": [...]}``, each ``add|update|delete service|real server ...`` in ipvsadm's
    words). Settings changes are in-place edits; only services we own are ever deleted.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.plan
    """
    result = _apply_spec(_pillar_spec()[0], None, test=True, source="plan")
    return {"changes": result["changes"], "problems": result["problems"]}


def apply(test=False):
    """
    Bring this director's IPVS table to what the pillar says: services added or edited in place,
    real servers added, edited (weight, forwarding) or removed, services the pillar dropped
    removed; services we do not own left alone. Read back after applying: anything still
    different is an error. A real run records what it applied (``last_applied``): the periodic
    re-apply and a restart restore that.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.apply
        salt 'lablvs*' ipvs.apply test=True
    """
    with hpc_applied.exclusive(LOCK):
        spec, digest = _pillar_spec()
        return _apply_spec(spec, digest, test, source="pillar")


def reapply(test=False, wait=True):
    """
    Apply again what the last apply from the pillar recorded (``last_applied``): what the
    hpc_refresh beacon runs every minute and within seconds of a minion start, so a director
    that rebooted (an empty IPVS table) or a table flushed by hand (``ipvsadm -C``) is
    restored without a highstate. With no record yet, nothing is done. ``wait=False``: when
    another apply holds the lock, return at once (``skipped``).

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.reapply
    """
    with hpc_applied.exclusive(LOCK, wait=wait) as held:
        if held is None:
            return {"changes": [], "errors": [], "applied": False, "skipped": "another apply holds the lock"}
        record = _record()
        if not record:
            return {"changes": [], "errors": [], "applied": False}
        return _apply_spec(record["spec"], record.get("pillar_digest"), test, source="record")


def clean(test=False):
    """
    Remove every service we own (the pillar's and those recorded), with their real servers;
    nothing else in the table is touched. Recorded, so no re-apply puts them back.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.clean
    """
    with hpc_applied.exclusive(LOCK):
        spec, digest = _pillar_spec()
        pillars = [svc.key() for svc in hpc_ipvs.parse_rules(spec["table"]).services]
        return _apply_spec({"table": ""}, digest, test, source="clean",
                           also_owned=pillars)


def last_applied():
    """
    What this director's IPVS table last applied (the table in ipvsadm's words, the services we
    own, the pillar's digest, when). Empty when nothing was applied yet.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.last_applied
    """
    return _record()


def table():
    """
    This director's whole IPVS table as ``ipvsadm -S -n`` writes it (ours and anyone's), and
    each real server's connection counters.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.table
    """
    handle = _handle()
    try:
        have = handle.read()
    finally:
        handle.close()
    return {"rules": have.text(),
            "connections": {key: {"active": c.active, "inactive": c.inactive}
                            for key, c in have.conns.items()}}


# ---------------------------------------------------------------- health, drains, load


def health_targets():
    """
    The real servers this director's health probes watch: each address and the port sshd
    answers on (a fwmark service's real servers: 22), from the last applied table. What the
    ``hpc_lvs_health`` beacon probes.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.health_targets
    """
    record = _record()
    if not record:
        return []
    reals = hpc_ipvs.parse_rules(record["spec"]["table"]).reals
    return [{"address": a, "port": p} for a, p in hpc_health.targets(reals)]


def overrides():
    """
    What moves this director's weights away from the pillar's now: real servers its probes call
    dead (since when, why), drains, load factors; by real-server address. Kept across restarts.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.overrides
    """
    return _overrides().as_record()


def set_health(address, up, detail="", wait=True):
    """
    Record what this director's probes say of the real server at ``address`` (``up`` True or
    False) and apply the weights that follow at once: a dead one 0 in every service (in place:
    the connections IPVS tracks stay), never more than half a service's pool taken out this way
    (``problems`` says when a server was kept in); a live one back to its weight. Kept in the
    overrides record, so the periodic re-apply, a restart and a highstate keep it. What the
    ``hpc_lvs_health`` beacon calls on a transition.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs1' ipvs.set_health 10.12.0.22 False detail=refused
    """
    with hpc_applied.exclusive(LOCK, wait=wait) as held:
        if held is None:
            return {"changes": [], "errors": [], "problems": [], "applied": False,
                    "skipped": "another apply holds the lock"}
        current = _overrides()
        updated = current.with_health(str(address), bool(up), time.time(), str(detail))
        if updated != current:
            hpc_applied.save(__opts__["cachedir"], hpc_lvs_weights.SUBSYSTEM, updated.as_record())
        record = _record()
        if not record:
            return {"changes": [], "errors": [], "problems": [], "applied": False}
        return _apply_spec(record["spec"], record.get("pillar_digest"), False, source="health")


def health_settings():
    """
    How this director probes its real servers (``lvs.health``: ``interval``, ``timeout``,
    ``connect_timeout``, ``fall``, ``rise``), defaults filled in. What the ipvs formula gives the ``hpc_lvs_health``
    beacon.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.health_settings
    """
    return _ctx().sections["lvs"].health.model_dump()


def recheck(addresses=None, probes=None, interval=None, timeout=None):
    """
    Probe real servers now (``addresses``, default all of this director's), ``probes`` times
    ``interval`` seconds apart (default: ``lvs.health``'s larger of fall and rise, its interval
    and timeout), and act on a clear verdict: all probes failed -> dead (weight 0),
    all succeeded -> alive (its weight back); a mixed result changes nothing. What the master's
    reactor asks of every director when one of them reports a real server dead or back: the
    claim is re-probed by each director before its table changes.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.recheck
        salt 'lablvs*' ipvs.recheck addresses='[10.12.0.22]'
    """
    settings = health_settings()
    probes = int(probes or max(settings["fall"], settings["rise"]))
    interval = float(interval or settings["interval"])
    timeout = float(timeout or settings["timeout"])
    wanted = set(addresses or [])
    targets = [(t["address"], t["port"]) for t in health_targets() if not wanted or t["address"] in wanted]
    dead = set(_overrides().dead)
    report = {}
    for address, port in targets:
        results = []
        for n in range(probes):
            if n:
                time.sleep(interval)
            results.append(hpc_health.probe_ssh(address, port, timeout, settings["connect_timeout"]))
        verdict = hpc_health.verdict([r.ok for r in results])
        entry = {"up": verdict, "detail": results[-1].detail, "was_up": address not in dead}
        if verdict is not None and verdict != entry["was_up"]:
            entry["applied"] = set_health(address, verdict, detail=results[-1].detail)
        report[address] = entry
    return report
