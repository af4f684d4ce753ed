"""Beacon: a daemon we own (keepalived, conntrackd, dnsmasq) died -> ``hpc/daemon/<service>/dead``.

The master's reactor (salt/reactor/daemon.sls -> hpc_react.daemon) starts it again on this
minion only. Works where no init system restarts anything (the lab's hosts, SysV hosts); under
systemd our drop-in (Restart=on-failure) usually wins the race, and this event is the record.
Each formula that runs a daemon adds one instance of this beacon (``beacon_module``):

.. code-block:: yaml

    beacons:
      hpc_daemon_keepalived:
        - beacon_module: hpc_daemons
        - service: keepalived
        - sig: /usr/sbin/keepalived

A daemon counts as running when a process's command line matches ``sig`` (a regular
expression, as for Salt's ``service.running``). ``dead`` fires when a daemon seen running is
gone, and again every ``repeat`` seconds (default 10) while it stays dead (a lost event, a
failed start); ``alive`` fires once it is back. A daemon never seen running since the minion
started fires nothing: the highstate starts it, and an admin's ``service stop`` before then
is not undone. Signed (hpc_signed): the master acts only on a proven sender.

A daemon that is down while a state or service job runs on this minion is that job's: a restart
by Debian's init scripts (SysV hosts, the lab's) stops it, sleeps 2 s and starts it, and a revival
in that window made the script's own start fail ("already running"; seen in the lab on dnsmasq
when a pillar change restarted it). Nothing fires then; if it is still down after the job, the
next check fires ``dead`` as usual.
"""

from __future__ import annotations

import os
import re
import time

from _hpc_synced import hpc_beacons, hpc_signed

__virtualname__ = "hpc_daemons"
PROC = "/proc"
_STATE: dict[str, dict] = {}  # service -> {"alive": bool, "fired": time of the last dead event}


def __virtual__():
    return __virtualname__


def validate(config):
    conf = hpc_beacons.merged(config)
    if not conf.get("service") or not conf.get("sig"):
        return False, "hpc_daemons: 'service' and 'sig' are required"
    try:
        re.compile(conf["sig"])
    except re.error as exc:
        return False, f"hpc_daemons: sig {conf['sig']!r} is not a regular expression: {exc}"
    return True, "valid"


def running(sig: str, proc: str = PROC) -> bool:
    """A process whose command line matches ``sig`` (zombies and kernel threads have none)."""
    pattern = re.compile(sig)
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            with open(os.path.join(proc, pid, "cmdline"), "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmdline and pattern.search(cmdline):
            return True
    return False


def transition(previous: dict | None, alive: bool, now: float, repeat: float) -> tuple[str | None, dict]:
    """(event state or None, new memory) for one check of one daemon."""
    if alive:
        was_dead = previous is not None and not previous["alive"] and previous.get("seen", True)
        return ("alive" if was_dead else None), {"alive": True, "fired": 0.0}
    if previous is None:
        return None, {"alive": False, "fired": now, "seen": False}  # never seen running: not ours to revive yet
    if previous["alive"] or (previous.get("seen", True) and now - previous["fired"] >= repeat):
        return "dead", {"alive": False, "fired": now, "seen": True}
    return None, previous


BUSY = ("state.*", "service.*")  # jobs that stop and start daemons on purpose


def _jobs_restarting() -> bool:
    return any(__salt__["saltutil.is_running"](fun) for fun in BUSY)  # noqa: F821 - Salt's dunder


def beacon(config):
    conf = hpc_beacons.merged(config)
    service, now = conf["service"], time.time()
    alive = running(conf["sig"])
    if not alive and _jobs_restarting():
        return []  # the job's to start again: judged at the first check after it
    state, _STATE[service] = transition(_STATE.get(service), alive, now, float(conf.get("repeat", 10)))
    if state is None:
        return []
    tag = f"hpc/daemon/{service}/{state}"
    __salt__["event.send"](tag, hpc_signed.sign(__opts__, tag, {"service": service, "state": state}))
    return []
