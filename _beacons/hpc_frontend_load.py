"""Beacon: this frontend's load, for the login pool's weights -> ``hpc/lvs/load/<minion id>``.

Every ``every`` seconds it reads the kernel's 1-minute load average (``/proc/loadavg``), divides
it by the CPUs this minion may run on, and counts the users logged in (utmp, as ``who`` does).
It reports to the master, signed (hpc_signed: the master believes the sender it verified, not
the tag or the payload), when the load per core moved by ``report_change`` or more since the
last report, and at least every ``heartbeat`` seconds. The master turns the reports into weights
(hpc_react.lvs_load -> hpc_lvs_load: smoothing, dead-band, rate limit -> ``ipvs.set_load`` on
the directors). Users are reported and shown, not weighed: the wlc scheduler already counts each
frontend's connections.

Set by the frontend formula on every real server of an lvs service (``lvs.load``).

.. code-block:: yaml

    beacons:
      hpc_frontend_load:
        - every: 10
"""

from __future__ import annotations

import math
import os
import time

from _hpc_synced import hpc_beacons, hpc_signed

__virtualname__ = "hpc_frontend_load"
TAG = "hpc/lvs/load/{minion}"
SETTINGS = {"every": 10.0, "report_change": 0.02, "heartbeat": 60.0, "loadavg": "/proc/loadavg"}
_LAST = {"sampled": -math.inf, "sent": -math.inf, "per_core": None}


def __virtual__():
    return __virtualname__


def validate(config):
    conf = {**SETTINGS, **hpc_beacons.merged(config)}
    for key in ("every", "heartbeat"):
        if not isinstance(conf[key], int | float) or conf[key] <= 0:
            return False, f"hpc_frontend_load: {key!r} must be a number of seconds > 0"
    if not isinstance(conf["report_change"], int | float) or conf["report_change"] < 0:
        return False, "hpc_frontend_load: 'report_change' must be a number >= 0"
    return True, "valid"


def _users() -> int:
    """Distinct users with a login session (utmp); 0 where utmp cannot be read."""
    try:
        import psutil

        return len({u.name for u in psutil.users()})
    except Exception:  # noqa: BLE001 - informational: a missing utmp must not stop the load report
        return 0


def sample(loadavg: str = "/proc/loadavg") -> dict:
    """{load1, cores, per_core, users} now."""
    with open(loadavg, encoding="ascii") as fh:
        load1 = float(fh.read().split()[0])
    cores = len(os.sched_getaffinity(0)) or 1
    return {"load1": load1, "cores": cores, "per_core": round(load1 / cores, 3), "users": _users()}


def beacon(config):
    conf = {**SETTINGS, **hpc_beacons.merged(config)}
    now = time.monotonic()
    if now - _LAST["sampled"] < float(conf["every"]):
        return []
    _LAST["sampled"] = now
    data = sample(conf["loadavg"])
    moved = _LAST["per_core"] is None or abs(data["per_core"] - _LAST["per_core"]) >= conf["report_change"]
    if not moved and now - _LAST["sent"] < float(conf["heartbeat"]):
        return []
    _LAST["sent"], _LAST["per_core"] = now, data["per_core"]
    tag = TAG.format(minion=__opts__["id"])
    __salt__["event.send"](tag, hpc_signed.sign(__opts__, tag, data))  # proof of sender
    return [dict(data, tag=__opts__["id"])]
