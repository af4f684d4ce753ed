"""Beacon: run a subsystem's re-apply every minute or so, inside the minion's process.

Policy routing re-resolves group members each minute (LDAP changes without any event here):
``policy_routing.reapply``, from the record of the last apply. A Salt schedule ran it as a job,
and a job is a fork of the minion (~0.2 s of CPU) every minute on every node: jitter for the
jobs a compute node runs, and measured in the lab, the reason 3 of 10 IB storms had a node
healed after 0.3-0.6 s instead of 0.2. Here the minion's beacon loop starts the function in a
thread of the minion (~20 ms, no fork). Each run comes ``every`` seconds after the last plus a
random splay, so that minions started together do not run in the same second; the first run is
a random time within the first period (a sync reloads this module: no run at once on every
node). The function is called with ``wait=False``: when an apply or a heal holds the lock, this
round is skipped (that one converges anyway).

.. code-block:: yaml

    beacons:
      hpc_refresh:
        - function: policy_routing.reapply
        - every: 60
        - splay: 20
        - first: 5      # optional: the first run within 5 s of a minion start (default: one period)

A second function gets a second instance: ``hpc_refresh_ipvs: [{beacon_module: hpc_refresh}, ...]``.
Fires no event; what a run changed or could not do goes to the minion's log (warning).
"""

from __future__ import annotations

import logging
import random
import threading
import time

from _hpc_synced import hpc_beacons

log = logging.getLogger(__name__)
__virtualname__ = "hpc_refresh"
_NEXT: dict[str, float] = {}  # function -> monotonic time of its next run
THREAD = "hpc_refresh"


def __virtual__():
    return __virtualname__


def validate(config):
    conf = hpc_beacons.merged(config)
    if not isinstance(conf.get("function"), str) or "." not in conf["function"]:
        return False, "hpc_refresh: 'function' must name an execution function (module.function)"
    for key in ("every", "splay", "first"):
        if not isinstance(conf.get(key, 0), int | float) or conf.get(key, 0) < 0:
            return False, f"hpc_refresh: {key!r} must be a number of seconds >= 0"
    return True, "valid"


def due(function: str, now: float, every: float, splay: float, rng: random.Random = random,
        first: float | None = None) -> bool:
    """Whether ``function`` runs now; when it does, its next run is set. Never run yet (a minion
    start, a module reload): the first run is at a random time within one period, or within
    ``first`` seconds (the IPVS table of a director that booted: restored within seconds)."""
    if function not in _NEXT:
        _NEXT[function] = now + rng.uniform(0, every + splay if first is None else first)
        return False
    if now < _NEXT[function]:
        return False
    _NEXT[function] = now + every + rng.uniform(0, splay)
    return True


def beacon(config):
    conf = hpc_beacons.merged(config)
    function = conf["function"]
    first = float(conf["first"]) if "first" in conf else None
    if not due(function, time.monotonic(), float(conf.get("every", 60)), float(conf.get("splay", 20)), first=first):
        return []
    if any(t.name == f"{THREAD}:{function}" and t.is_alive() for t in threading.enumerate()):
        return []  # the last run is still going (a slow NSS lookup): no second one beside it
    threading.Thread(target=run, args=(__salt__[function], function), name=f"{THREAD}:{function}",
                     daemon=True).start()
    return []


def run(call, function: str) -> None:
    """One run, in its own thread: the minion's main thread runs an asyncio loop, and pyroute2's
    synchronous API (the routing handle) cannot run inside a running loop."""
    try:
        result = call(wait=False)
    except Exception:  # noqa: BLE001 - the next period tries again
        log.exception("hpc_refresh: %s failed", function)
        return
    if result.get("changes") or result.get("errors"):
        log.warning("hpc_refresh: %s: changes %s, errors %s", function, result.get("changes"), result.get("errors"))
