"""What the hpc_link beacon makes of netlink messages: per interface, the states a burst shows,
whether that burst is worth an event, and the event itself; and when to send it. No Salt, no
sockets.

Tested from recorded messages (tests/unit/test_link_beacon.py); the beacon owns the socket,
the thread and the clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

IFF_UP = 0x1
TAG = "hpc/net/link/{interface}/{state}"


def link_state(msg: dict[str, Any]) -> str:
    """'up' or 'down' (administratively) from an RTM_NEWLINK/DELLINK message.

    Admin state, not carrier: an admin down drops the static routes (LAB-NOTES), a carrier-only
    loss keeps them, and routes can be put back as soon as the link is admin up."""
    if msg.get("event") == "RTM_DELLINK":
        return "down"
    return "up" if msg.get("flags", 0) & IFF_UP else "down"


def observe(msgs: Iterable[dict[str, Any]], watched: set[str], names: dict[int, str]) -> dict[str, list[str]]:
    """Per watched interface, the states the messages show, in order ('addr-' marks a lost address)."""
    seen: dict[str, list[str]] = {}
    for msg in msgs:
        kind = msg.get("event")
        if kind in ("RTM_NEWLINK", "RTM_DELLINK"):
            name = msg.get("IFLA_IFNAME") or names.get(msg.get("index"))
            if name in watched:
                names[msg.get("index")] = name
                seen.setdefault(name, []).append(link_state(msg))
        elif kind in ("RTM_NEWADDR", "RTM_DELADDR"):
            name = names.get(msg.get("index"))
            if name in watched:
                seen.setdefault(name, []).append("addr+" if kind == "RTM_NEWADDR" else "addr-")
    return seen


def came_up(states: list[str]) -> bool:
    """The burst so far shows the interface (admin) up or an address back: time for the local heal."""
    return bool(states) and states[-1] in ("up", "addr+")


def verdict(states: list[str], current: str, last: str | None) -> dict[str, Any] | None:
    """The event to fire for one settled burst, or None when nothing changed for the routes."""
    flapped = "down" in states or "addr-" in states
    if current == "up" and (flapped or last != "up" or "addr+" in states):
        return {"state": "up", "flapped": flapped}
    if current == "down" and last != "down":
        return {"state": "down", "flapped": False}
    return None


def event(interface: str, outcome: dict[str, Any], when: float,
          local: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """(tag, data) of the event fired to the master for one interface's settled burst; ``local``:
    what the local heal did (None when it did not run: link down, or nothing applied yet)."""
    data = {"interface": interface, **outcome, "time": when, "local": local}
    return TAG.format(interface=interface, state=outcome["state"]), data


def runnable_tasks(loadavg: str = "/proc/loadavg") -> int:
    """Tasks runnable on the machine right now (the reader included): /proc/loadavg's ``r/t``."""
    with open(loadavg, encoding="ascii") as fh:
        return int(fh.read().split()[3].split("/")[0])


def yield_to_runnable(cap: float, crowd: int, runnable: Callable[[], int] = runnable_tasks,
                      sleep: Callable[[float], None] = time.sleep, poll: float = 0.01) -> float:
    """Wait while at least ``crowd`` other tasks are runnable, for at most ``cap`` seconds; the
    seconds waited. The link event to the master is a report: the routes are back already. In an
    IB storm in the lab, 30 nodes share 2 cores and each node's report (signature, Salt's event
    path: ~5 ms of CPU) ran before the last nodes' local heals (bench-storm: the last heal 0.15 s
    without reports, 0.21 s with them). The beacon sets ``crowd`` to twice the CPUs: a storm, not
    a machine's usual background (at 1x the CPUs the lab's two idle VMs made single-flap reports
    wait: heal_confirmed p95 0.50 -> 0.65 s). A real node's report goes at once, or waits
    ``cap`` at most behind a job oversubscribing every core."""
    polls = math.ceil(cap / poll)
    for done in range(polls):
        if runnable() - 1 < crowd:
            return done * poll
        sleep(poll)
    return polls * poll
