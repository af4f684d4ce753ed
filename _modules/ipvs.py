"""The IPVS table of an LVS director (seeds 000 and 001): the pillar's virtual services and their
real servers, in the kernel through generic netlink (``hpc_ipvs_kernel``), planned by the pure
planner ``hpc_ipvs``. Only services we own are touched: the pillar's, and those an earlier apply
made (recorded by ``hpc_applied``); a service made by hand on another VIP stays as it is.

keepalived holds the VIP (VRRP only); this module owns every IPVS entry. On a host that is not
a director and never was, nothing here opens an IPVS socket.
"""

from __future__ import annotations

import dataclasses
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
    table = hpc_ipvs.desired(lvs, ctx.inventory, host=ctx.host).text()
    return {"table": table, "load": lvs.load.enabled}, ctx.digest


def _record():
    return hpc_applied.load(__opts__["cachedir"], SUBSYSTEM) or {}


def _overrides():
    return hpc_lvs_weights.Overrides.from_record(hpc_applied.load(__opts__["cachedir"], hpc_lvs_weights.SUBSYSTEM))


def _change_overrides(change, source, wait=True):
    """Under the table's lock: ``change(current overrides)`` saved when it differs, then the
    recorded table applied with it (in place). The apply's result, ``{}`` when no table was
    applied yet, None when ``wait`` is False and another apply holds the lock."""
    with hpc_applied.exclusive(LOCK, wait=wait) as held:
        if held is None:
            return None
        current = _overrides()
        updated = change(current)
        if updated != current:
            hpc_applied.save(__opts__["cachedir"], hpc_lvs_weights.SUBSYSTEM, updated.as_record())
        record = _record()
        return _apply_spec(record["spec"], record.get("pillar_digest"), False, source=source) if record else {}


def _read_kernel():
    """The whole IPVS table as the kernel has it now (one handle, closed after)."""
    handle = _handle()
    try:
        return handle.read()
    finally:
        handle.close()


def _finish_drains(overrides, have, test):
    """Drains whose real servers have no active connection left here (in the services whose VIP
    this director holds: a backup's are the sync daemon's copies), or whose timeout passed,
    become finished (their real servers leave the table); recorded unless ``test`` (which plans
    what the real run will do)."""
    if not overrides.drained:
        return overrides
    local = set(__salt__["network.ip_addrs"]())
    finished = overrides.finish_drains(hpc_lvs_weights.active_by_address(have, local), time.time())
    if finished != overrides and not test:
        hpc_applied.save(__opts__["cachedir"], hpc_lvs_weights.SUBSYSTEM, finished.as_record())
    return finished


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
    base = hpc_ipvs.parse_rules(spec["table"])
    owned = set(_record().get("owned", [])) | set(also_owned)
    if not base.services and not base.daemons and not owned:
        return {"changes": [], "errors": [], "problems": [], "applied": False}  # never a director: no IPVS socket
    if base.services and not test:
        _load_modules(base)
    handle = _handle()
    try:
        have = handle.read()
        overrides = _overrides()
        if not spec.get("load", True):  # lvs.load.enabled false: the pillar's weights, factors kept aside
            overrides = dataclasses.replace(overrides, load={})
        want, problems = hpc_lvs_weights.weighted(base, _finish_drains(overrides, have, test))
        steps = (_quiescent_step() if want.services else []) + hpc_ipvs.plan(want, have, owned)
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


def sysctls():
    """
    The sysctls of this director (empty off the directors): ``net.ipv4.ip_forward = 1`` when
    it directs a NAT service (the real servers' replies pass through it), and
    ``net.ipv4.vs.sloppy_tcp = 1`` when connections are synced: after a failover the new master
    takes up a connection from any of its packets, not only a SYN, so a session whose sync
    message was still in the old master's buffer (the kernel sends them up to 2 s late) goes on
    to the frontend its client's persistence template names.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.sysctls
    """
    ctx = _ctx()
    if not ctx.member["director"]:
        return {}
    lvs = ctx.sections["lvs"]
    out = {"net.ipv4.ip_forward": 1} if ctx.member["director_forwards"] else {}
    return out | ({"net.ipv4.vs.sloppy_tcp": 1} if lvs.sync is not None else {})


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
    have = _read_kernel()
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
    result = _change_overrides(lambda o: o.with_health(str(address), bool(up), time.time(), str(detail)),
                               "health", wait=wait)
    if result is None:
        return {"changes": [], "errors": [], "problems": [], "applied": False,
                "skipped": "another apply holds the lock"}
    return result or {"changes": [], "errors": [], "problems": [], "applied": False}


def set_load(loads):
    """
    Scale frontends' weights by their load: ``loads`` maps a host to a factor in (0, 1] (1: the
    pillar's weight; the weight becomes ``round(weight * factor)``, at least 1: load never takes
    a frontend out). In place, in every service the host is a real server of; kept in the
    overrides record (restarts and highstates keep it). What the master's reactor calls after a
    frontend's ``hpc/lvs/load`` report moved its factor (hpc_lvs_load: smoothing, dead-band,
    rate limit). A host that is not a real server, or a factor out of range, is an error and
    nothing is changed.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.set_load '{labfe2: 0.5}'
    """
    if not isinstance(loads, dict) or not loads:
        raise CommandExecutionError(f"set_load: loads must map hosts to factors (got {loads!r})")
    by_address = {}
    for host, factor in loads.items():
        addresses = _pool_addresses(str(host))
        if not addresses:
            raise CommandExecutionError(f"set_load: {host} is not a real server of any lvs service")
        if not isinstance(factor, int | float) or not 0 < factor <= 1:
            raise CommandExecutionError(f"set_load: {host}: factor must be in (0, 1] (got {factor!r})")
        by_address[float(factor)] = [*by_address.get(float(factor), []), *sorted(addresses)]

    def change(overrides):
        for factor, addresses in by_address.items():
            overrides = overrides.with_load(addresses, factor)
        return overrides

    result = _change_overrides(change, "load")
    return {"loads": {str(h): float(f) for h, f in loads.items()}, "changes": result.get("changes", []),
            "errors": result.get("errors", []), "problems": result.get("problems", [])}


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
    reactor asks of a director that did not report a change the other directors reported: it
    re-probes the claim itself before its table changes.

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


def _pool_addresses(host):
    """{address: [service keys]} of ``host`` as a real server of the pillar's services."""
    ctx = _ctx()
    out = {}
    for svc in ctx.sections["lvs"].services:
        for real in svc.real_servers:
            if real.host == host:
                address = ctx.inventory[host].interfaces[svc.reals_on].ip
                out.setdefault(address, []).append(hpc_ipvs.service_of(svc).key())
    return out


def drain(host, timeout=600):
    """
    Drain ``host`` out of the login pool on this director: weight 0 in every service at once (no
    new client goes there; open sessions go on), then its real servers leave the table when
    they have no active connection left or ``timeout`` seconds passed, whichever comes first
    (checked at every apply: the minute's re-apply, ``ipvs.drains``, a highstate). Kept in the
    overrides record: a restart or a highstate does not undo it; ``ipvs.undrain`` does. A host
    that is not a real server of any service is an error; nothing is changed then.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.drain labfe2 timeout=3600
    """
    addresses = _pool_addresses(str(host))
    if not addresses:
        pool = sorted({r.host for svc in _ctx().sections["lvs"].services for r in svc.real_servers})
        raise CommandExecutionError(f"drain: {host} is not a real server of any lvs service "
                                    f"(real servers: {', '.join(pool) or 'none'})")
    if float(timeout) <= 0:
        raise CommandExecutionError(f"drain: timeout must be > 0 seconds (got {timeout})")
    result = _change_overrides(lambda o: o.with_drain(str(host), sorted(addresses), time.time(), float(timeout)),
                               "drain")
    return {"host": str(host), "addresses": sorted(addresses), "changes": result.get("changes", []),
            "errors": result.get("errors", []), "drains": drains()}


def undrain(host):
    """
    Cancel ``host``'s drain on this director: its real servers come back (re-added if the drain
    had finished) with the weight health and the pillar give them.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.undrain labfe2
    """
    if not any(d.get("host") == str(host) for d in _overrides().drained.values()):
        return {"host": str(host), "changes": [], "errors": [], "drained": False}
    result = _change_overrides(lambda o: o.without_drain(str(host)), "undrain")
    return {"host": str(host), "changes": result.get("changes", []), "errors": result.get("errors", []),
            "drained": True}


def drains(advance=False):
    """
    The drains on this director, by real-server address: host, since, timeout, whether it
    finished (``removed``), and the active and inactive connections the real server has now.
    ``advance=True`` first applies the recorded table, so a drain whose connections reached 0
    finishes now rather than at the next minute's re-apply.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.drains
    """
    if advance:
        reapply()
    conns = table()["connections"]
    out = {}
    for address, drain in _overrides().drained.items():
        mine = [c for key, c in conns.items() if key.split(" -> ")[1].rsplit(":", 1)[0] == address]
        out[address] = {**drain, "active": sum(c["active"] for c in mine), "inactive": sum(c["inactive"] for c in mine)}
    return out


def status():
    """
    This director's view of the pool: each service of its table with its real servers (weight,
    active and inactive connections, health from the probes, drain), and whether this director
    holds the service's VIP now. What ``salt-run lvs.status`` gathers from every director.

    CLI Example:

    .. code-block:: bash

        salt 'lablvs*' ipvs.status
    """
    have = _read_kernel()
    overrides, local = _overrides(), set(__salt__["network.ip_addrs"]())
    services = {}
    for svc in have.services:
        reals = {}
        for real in have.reals_of(svc.key()):
            conns = have.conns.get(real.key())
            reals[f"{real.address}:{real.port}"] = {
                "weight": real.weight, "active": conns.active if conns else 0,
                "inactive": conns.inactive if conns else 0,
                "health": "dead" if real.address in overrides.dead else "alive",
                "drain": overrides.drained.get(real.address)}
        services[svc.key()] = {"holds_vip": bool(svc.address) and svc.address in local, "real_servers": reals}
    finished = {a: d for a, d in overrides.drained.items() if d.get("removed")}
    return {"services": services, "dead": dict(overrides.dead), "drains_finished": finished}
