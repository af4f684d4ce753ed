"""Per-user policy routing (seed 003): our routing tables, fwmark rules, routes and the nft
marking of the chosen users' and groups' traffic. Reads and writes the kernel through netlink
(pyroute2) and ``nft``; plans with the pure planners in ``_utils``.
"""

from __future__ import annotations

import logging
import time

from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_accounts, hpc_applied, hpc_context, hpc_marking, hpc_nft, hpc_routing, hpc_routing_kernel

log = logging.getLogger(__name__)
__virtualname__ = "policy_routing"
LOCK, SUBSYSTEM = hpc_routing_kernel.LOCK, hpc_routing_kernel.SUBSYSTEM
WAITING = "/run/hpcnet-policy-routing.waiting"  # held by the one heal queued behind a running one


def __virtual__():
    return __virtualname__


def _ctx():
    return hpc_context.load(__context__, __pillar__, __opts__, CommandExecutionError)


def _pillar_spec():
    """(spec, pillar digest) of this host's policy routing in the pillar this call sees."""
    ctx = _ctx()
    return hpc_routing.spec(ctx.sections["policy_routing"], ctx.member["policy_routing"]), ctx.digest


def _desired(spec):
    """(RoutingState, Marking, missing accounts) a spec asks for, accounts resolved now; empty
    when the host is not routed."""
    if not spec["routed"]:
        return hpc_routing.RoutingState(), None, []
    tables = spec["tables"]
    routes = frozenset(hpc_routing.Route(*route) for route in spec["routes"])
    rules, sets, missing = set(), [], []
    for mark in spec["marks"]:
        resolved = hpc_accounts.resolve(mark["users"], mark["groups"])
        missing += [f"{__opts__['id']}: {what} (mark {mark['name']}) is not known on this host"
                    for what in resolved.missing]
        sets.append(hpc_marking.MarkSet(mark["name"], mark["fwmark"], resolved.uids))
        rules |= _mark_rules(mark["priority"], mark["fwmark"], mark["table"], resolved.uids)
    state = hpc_routing.RoutingState({tid: name for name, tid in tables.items()}, frozenset(rules), routes)
    return state, hpc_marking.desired(sets), missing


def _mark_rules(priority, fwmark, table, uids):
    """The fwmark rule routes every marked packet, the ownerless ones included (ct mark restore);
    uidrange rules route the chosen users' sockets at connect() time, before the output hook marks
    anything: without them a connect() fails when the main table has no route (after an IB flap)."""
    rules = {hpc_routing.Rule(priority, fwmark, table)}
    return rules | {hpc_routing.Rule(priority, 0, table, r) for r in hpc_routing.uid_ranges(uids)}


def _marking_table():
    """Our marking table in this host's kernel (hpc_nft: read, check + apply in one transaction, delete)."""
    return hpc_nft.NftTable(hpc_nft.marking_codec(), run=hpc_nft.from_cmd_run_all(__salt__["cmd.run_all"]))


def _read_marking():
    try:
        return _marking_table().read()
    except hpc_nft.NftError as exc:
        raise CommandExecutionError(str(exc)) from None


def _plan(handle, state, marking):
    actual = handle.read(set(state.tables) | _owned(handle))
    return hpc_routing.plan(state, actual), hpc_marking.plan(marking, _read_marking())


def _owned(handle) -> set[int]:
    return set(handle.read(set()).tables)  # our rt_tables file lists what earlier runs owned


def _apply_marking(marking):
    """Our marking table replaced whole (or removed when no user is marked); the errors, in words."""
    table = _marking_table()
    try:
        if marking and marking.sets:
            table.apply(marking)
        else:
            table.delete()
    except hpc_nft.NftError as exc:
        return [str(exc)]
    return []


def plan():
    """
    What applying the pillar would change on this host, in words (routing, then marking),
    and the users or groups the pillar names that this host does not know.

    CLI Example:

    .. code-block:: bash

        salt 'labcn*' policy_routing.plan
    """
    state, marking, missing = _desired(_pillar_spec()[0])
    handle = hpc_routing_kernel.NetlinkRouting()
    try:
        routing, marks = _plan(handle, state, marking)
    finally:
        handle.close()
    return {"changes": [c.describe() for c in routing + marks], "missing": missing}


def apply(test=False):
    """
    Bring the tables, rules, routes and marking of this host to what the pillar says; remove
    only what we own. Returns the changes made, errors, and missing accounts (those are
    reported, the rest still applies). Serialized by a lock: concurrent heals wait their turn.
    A real run records what it applied (``last_applied``): the schedule and every heal
    converge to that, not to the minion's in-memory pillar, which may be older.

    The highstate (``state.apply``) passes the freshly compiled pillar; from the CLI this uses
    the minion's in-memory pillar, so refresh it first (``saltutil.refresh_pillar``).

    CLI Example:

    .. code-block:: bash

        salt 'labcn*' policy_routing.apply
        salt 'labcn*' policy_routing.apply test=True
    """
    with hpc_applied.exclusive(LOCK):
        spec, digest = _pillar_spec()
        return _apply_spec(spec, digest, test, source="pillar")


def reapply(test=False, wait=True):
    """
    Apply again what the last apply from the pillar applied (``last_applied``), the users and
    groups resolved anew: what the hpc_refresh beacon runs each minute, so a group's new member
    is routed without a pillar edit, and a pillar edit the last highstate applied is never
    undone by an older in-memory pillar. With no record yet, the pillar is applied (and
    recorded). ``wait=False``: when another apply or heal holds the lock, return at once
    (``skipped``) instead of waiting for it.

    CLI Example:

    .. code-block:: bash

        salt 'labcn*' policy_routing.reapply
    """
    with hpc_applied.exclusive(LOCK, wait=wait) as held:
        if held is None:
            return {"changes": [], "errors": [], "missing": [], "applied": False,
                    "skipped": "another apply or heal holds the lock"}
        return _reapply_locked(test)


def _reapply_locked(test=False):
    record = hpc_applied.load(__opts__["cachedir"], SUBSYSTEM)
    if record is None:
        spec, digest = _pillar_spec()
        return _apply_spec(spec, digest, test, source="pillar")
    return _apply_spec(record["spec"], record.get("pillar_digest"), test, source="record")


def last_applied():
    """
    What this host's policy routing last applied from the pillar (the spec, the pillar's
    digest, when), and the routing state as resolved then: what the schedule and the heals
    converge to. Empty when nothing was applied yet.

    CLI Example:

    .. code-block:: bash

        salt 'labcn*' policy_routing.last_applied
    """
    return hpc_applied.load(__opts__["cachedir"], SUBSYSTEM) or {}


def _apply_spec(spec, digest, test, source):
    state, marking, missing = _desired(spec)
    handle = hpc_routing_kernel.NetlinkRouting()
    try:
        routing, marks = _plan(handle, state, marking)
        changes = [c.describe() for c in routing + marks]
        errors = []
        if not test and changes:
            errors = hpc_routing_kernel.apply(handle, routing) + (_apply_marking(marking) if marks else [])
            left, left_marks = _plan(handle, state, marking)
            errors += [f"still differs after applying: {c.describe()}" for c in left + left_marks]
    finally:
        handle.close()
    if not test:
        hpc_applied.save(__opts__["cachedir"], SUBSYSTEM, {
            "spec": spec, "pillar_digest": digest, "source": source, "applied_at": time.time(),
            "state": hpc_routing.state_as_data(state)})
    return {"changes": changes, "errors": errors, "missing": missing, "applied": bool(changes) and not test}


def heal(reason=""):
    """
    Re-apply policy routing after a fault (an IB link came back) from what was last applied
    (``reapply``), read the result back, and tell the master: ``hpc/net/routes/restored`` or
    ``hpc/net/routes/failed``. The beacon has usually put the routes back already (local heal);
    this confirms it, and also re-resolves the accounts.

    A storm of events costs at most one heal running and one waiting: a heal that finds another
    already waiting returns at once (``coalesced``), since the waiting one reads the kernel
    after the running one is done and so sees whatever this one would have.

    CLI Example:

    .. code-block:: bash

        salt labcn1 policy_routing.heal reason='ib0 up'
    """
    started = time.monotonic()
    with hpc_applied.exclusive(WAITING, wait=False) as waiting:
        if waiting is None:
            return {"changes": [], "errors": [], "missing": [], "applied": False, "ok": True, "coalesced": True}
        with hpc_applied.exclusive(LOCK):
            waiting.release()  # running now: the next event may queue behind us
            result = _reapply_locked()
    ok = not result["errors"]  # _apply_spec read the kernel back: what still differs is an error
    tag = "hpc/net/routes/" + ("restored" if ok else "failed")
    __salt__["event.send"](tag, {"reason": reason, "changes": result["changes"], "errors": result["errors"],
                                 "seconds": round(time.monotonic() - started, 3)})
    return dict(result, ok=ok, coalesced=False)


def clean(test=False):
    """
    Remove everything policy routing owns on this host: the rules and routes of the tables our
    rt_tables file lists, that file, and the nft marking table. Nothing else is touched.
    Recorded as the last apply, so neither the schedule nor a heal puts it back.

    CLI Example:

    .. code-block:: bash

        salt 'labcn*' policy_routing.clean
    """
    with hpc_applied.exclusive(LOCK):  # recorded too: no schedule or heal puts it back
        result = _apply_spec(hpc_routing.spec(None, False), None, test, source="clean")
    return {key: result[key] for key in ("changes", "errors", "applied")}


def watched_interfaces():
    """
    The interfaces this host's policy routes use (the IB interfaces whose flaps drop them):
    what the hpc_link beacon watches.

    CLI Example:

    .. code-block:: bash

        salt 'labcn*' policy_routing.watched_interfaces
    """
    return list(_ctx().member["watched_interfaces"])


def status():
    """
    Whether this host's tables, rules, routes and marks match the pillar.

    CLI Example:

    .. code-block:: bash

        salt 'labcn*' policy_routing.status
    """
    result = plan()
    return {"routed": _ctx().member["policy_routing"], "in_sync": not result["changes"], **result}
