"""Beacon: an IB interface's link or address changed -> ``hpc/net/link/<iface>/<up|down>``.

Not a poll. Salt calls beacons once a second; waiting for that tick would add up to 1 s to
every heal (GSI wants the routes back at once). So the first call starts a thread that
listens to netlink (RTM_NEWLINK/DELLINK/NEWADDR/DELADDR) and acts as soon as the interface
settles (``debounce`` seconds without news, default 0.05): a flap (down, up within the window)
still counts as ``up`` with ``flapped: True``, because the kernel dropped the static routes on
the way down. On ``up`` the listener first puts the routes of the last apply back itself (the
local heal: no master needed, hpc_routing_kernel.heal_from_record), then fires the event with
what it did under ``local``; the master's reactor re-applies and confirms. Later calls only
check the thread is alive.

.. code-block:: yaml

    beacons:
      hpc_link:
        - interfaces: [ib0]
        - debounce: 0.05
"""

from __future__ import annotations

import logging
import os
import queue
import select
import socket
import threading
import time

from _hpc_synced import hpc_beacons, hpc_link_events, hpc_routing_kernel, hpc_signed

log = logging.getLogger(__name__)
__virtualname__ = "hpc_link"

RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
SYS_NET = "/sys/class/net"
SEND_YIELD_CAP = 0.2  # seconds an event may wait for a CPU no other task wants (hpc_link_events)
THREAD_NAME = "hpc_link"  # found by name: a module reload (sync) must not leave a second listener


def __virtual__():
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        return False, "hpc_link needs pyroute2"
    return __virtualname__


def validate(config):
    conf = hpc_beacons.merged(config)
    if not conf.get("interfaces") or not isinstance(conf["interfaces"], list):
        return False, "hpc_link: 'interfaces' must be a non-empty list of interface names"
    return True, "valid"


def sys_state(name: str, sys_net: str = SYS_NET) -> str:
    try:
        with open(f"{sys_net}/{name}/flags", encoding="ascii") as fh:
            return "up" if int(fh.read().strip(), 16) & hpc_link_events.IFF_UP else "down"
    except (OSError, ValueError):
        return "down"


class Listener(threading.Thread):
    """A raw netlink socket (not pyroute2's IPRoute, whose internal buffer hides queued messages
    from select), parsed with pyroute2's marshal."""

    def __init__(self, opts: dict, interfaces: list[str], debounce: float) -> None:
        super().__init__(name=THREAD_NAME, daemon=True)
        from pyroute2.netlink.rtnl.marshal import MarshalRtnl

        self.opts, self.watched, self.debounce = opts, set(interfaces), debounce
        self.key = (tuple(sorted(interfaces)), debounce)
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR))
        self.marshal = MarshalRtnl()
        self.names = {_index(name): name for name in self.watched}
        self.last = {name: sys_state(name) for name in self.watched}
        self.fired = 0
        self.stopped = threading.Event()
        self.outbox: queue.Queue = queue.Queue()

    def _read(self) -> list:
        return list(self.marshal.parse(self.sock.recv(1 << 16)))

    def _burst(self) -> tuple[list, dict | None]:
        """Messages of one burst: the first one (waiting at most 1 s, to notice ``stop``), then
        all that follow within ``debounce`` of each other; and the local heal, run at the first
        sign of a watched interface back up (not once the burst settles: the routes cannot come
        back too early, and a heal that finds the host in sync changes nothing)."""
        if not select.select([self.sock], [], [], 1.0)[0]:
            return [], None
        msgs, healed = self._read(), None
        while True:
            if healed is None and self._came_up(msgs):
                healed = self._heal()
            if not select.select([self.sock], [], [], self.debounce)[0]:
                return msgs, healed
            msgs += self._read()

    def _came_up(self, msgs: list) -> bool:
        seen = hpc_link_events.observe(msgs, self.watched, dict(self.names))
        return any(hpc_link_events.came_up(states) and sys_state(name) == "up" for name, states in seen.items())

    def run(self) -> None:
        sender = threading.Thread(target=self._send, name=f"{THREAD_NAME}_sender", daemon=True)
        sender.start()
        while not self.stopped.is_set():
            try:
                self._step()
            except Exception:  # noqa: BLE001 - a bad message must not kill the listener
                log.exception("hpc_link: listener step failed")
                time.sleep(0.5)
        self.outbox.put(None)

    def _send(self) -> None:
        """Events go to the master from this thread: a slow or unreachable master never delays
        the next local heal. Each yields first to runnable work (at most SEND_YIELD_CAP): the
        heals of other nodes sharing the lab's CPUs, or of other interfaces here."""
        import salt.utils.event

        crowd = 2 * len(os.sched_getaffinity(0))  # a storm's worth of runnable tasks
        with salt.utils.event.get_event("minion", opts=self.opts, listen=False) as bus:
            while (item := self.outbox.get()) is not None:
                tag, data = item
                hpc_link_events.yield_to_runnable(SEND_YIELD_CAP, crowd)  # the heals of a storm first
                bus.fire_master(hpc_signed.sign(self.opts, tag, data), tag)  # proof of sender
                log.info("hpc_link: fired %s", tag)

    def _step(self) -> None:
        msgs, healed = self._burst()
        for name, states in hpc_link_events.observe(msgs, self.watched, self.names).items():
            current = sys_state(name)
            event = hpc_link_events.verdict(states, current, self.last.get(name))
            self.last[name] = current
            if event and not self.stopped.is_set():  # replaced meanwhile: the new listener reports
                if event["state"] == "up" and (healed is None or healed["errors"]):
                    healed = self._heal()  # no up seen mid-burst (an address came back), or it failed early
                local = healed if event["state"] == "up" else None
                self.outbox.put(hpc_link_events.event(name, event, time.time(), local))
                self.fired += 1

    def _heal(self) -> dict | None:
        """Routes back at once from the last applied plan, before the master hears of it (one
        raw rtnetlink request: hpc_routing_kernel.heal_from_record)."""
        try:
            return hpc_routing_kernel.heal_from_record(self.opts["cachedir"])
        except Exception as exc:  # noqa: BLE001 - the master's heal still runs; say why this one did not
            log.exception("hpc_link: local heal failed")
            return {"changes": [], "errors": [f"local heal failed: {exc}"], "seconds": None}


def _index(name: str) -> int | None:
    try:
        with open(f"{SYS_NET}/{name}/ifindex", encoding="ascii") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return None


def listeners() -> list[threading.Thread]:
    """Every live listener of this process, whichever copy of this module started it."""
    return [t for t in threading.enumerate() if t.name == THREAD_NAME and t.is_alive()]


def beacon(config):
    """Starts (or restarts) the netlink listener; the events come from it, not from this call.

    One listener per minion process: one of this module's code with this config is kept, any
    other (an older config, or started by the copy of this module a sync replaced) is stopped."""
    conf = hpc_beacons.merged(config)
    key = (tuple(sorted(conf["interfaces"])), float(conf.get("debounce", 0.05)))
    running = listeners()
    keep = next((t for t in running if type(t) is Listener and t.key == key and not t.stopped.is_set()), None)
    for thread in running:
        if thread is not keep:
            thread.stopped.set()
    if keep is None:
        Listener(__opts__, list(key[0]), key[1]).start()
    return []
