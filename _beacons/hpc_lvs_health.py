"""Beacon: an LVS director probes its real servers' sshd several times a second and acts at once.

Not a poll at Salt's beacon tick (1 s). The first call starts a supervisor thread, and it one
prober thread per real server (``ipvs.health_targets``: the last applied table's addresses).
A prober connects (within ``connect_timeout``) and waits for ``SSH-`` (within ``probe_timeout`` in
all: hpc_health.probe_ssh) every ``interval`` seconds; a
``fall`` of failures in a row takes the server down, a ``rise`` of successes brings it back
(hpc_health.Tracker). On a transition the prober calls ``ipvs.set_health`` in this minion's
process: the weight goes to 0 (or back) in this director's table at once, in place, kept in the
overrides record, never more than half a pool out. Then it fires
``hpc/lvs/health/<address>/<down|up>``, signed (hpc_signed); the master's reactor has every
director re-probe the claim and apply its own verdict (``ipvs.recheck``).

A director that loses every real server at once (two or more addresses, all failing) blames
itself, not them: its own link or route is the likely fault. (All its servers, whichever network
they are on: a cut of one of two networks is not caught yet.)
It takes none of them out and reports none; each such server stays one failure from going down
once another server answers again. The other director, whose view is intact, still reports a
pool that really died.

Why here and not on the master: a Salt job in a TCG director starts seconds after it is
published; the director that sees the failure is the only place it can be acted on within a
second (as keepalived does). Each director probes for itself: both take a dead frontend out.

.. code-block:: yaml

    beacons:
      hpc_lvs_health:
        - interval: 0.25
        - probe_timeout: 0.5      # not "timeout": beacon.present takes that as its own
        - connect_timeout: 0.25
        - fall: 2
        - rise: 3
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from _hpc_synced import hpc_beacons, hpc_health, hpc_signed

log = logging.getLogger(__name__)
__virtualname__ = "hpc_lvs_health"
THREAD_NAME = "hpc_lvs_health"  # found by name: a module reload (sync) must not leave a second supervisor
TAG = "hpc/lvs/health/{address}/{state}"
RESCAN = 2.0  # seconds between two reads of the targets and of the overrides record
# Salt calls an enabled beacon every second; a supervisor not called for this long stops with its
# probers (the beacon was disabled or removed: beacons.disable_beacon, the formula's clean).
STALE = 5.0
# "probe_timeout", not "timeout": beacon.present passes its keyword arguments on to
# beacons.list_available, which takes "timeout" as how long to wait for the minion's answer (0.5 s:
# "Beacon is not available" on a busy TCG director).
SETTINGS = {"interval": 0.25, "probe_timeout": 0.5, "connect_timeout": 0.25, "fall": 2, "rise": 3}
FUNCTIONS = ("ipvs.health_targets", "ipvs.overrides", "ipvs.set_health")


def __virtual__():
    return __virtualname__


def validate(config):
    conf = {**SETTINGS, **hpc_beacons.merged(config)}
    for key in ("interval", "probe_timeout", "connect_timeout"):
        if not isinstance(conf[key], int | float) or conf[key] <= 0:
            return False, f"hpc_lvs_health: {key!r} must be a number of seconds > 0"
    for key in ("fall", "rise"):
        if not isinstance(conf[key], int) or conf[key] < 1:
            return False, f"hpc_lvs_health: {key!r} must be a whole number >= 1"
    return True, "valid"


class Prober(threading.Thread):
    """Probes one real server until stopped; reports transitions to its supervisor."""

    def __init__(self, supervisor: Supervisor, address: str, port: int, up: bool) -> None:
        super().__init__(name=f"{THREAD_NAME}:{address}:{port}", daemon=True)
        self.supervisor, self.address, self.port = supervisor, address, port
        conf = supervisor.conf
        self.tracker = hpc_health.Tracker(rise=conf["rise"], fall=conf["fall"], up={address: up})
        self.lock = threading.Lock()  # a transition and a resync from the record, one at a time
        self.stopped = threading.Event()
        self.failing = False  # the last probe failed: read by the other probers (blind())
        self.held = False  # a down transition is held because every server failed at once

    def resync(self, up: bool) -> None:
        """The record says otherwise (the master's recheck, an operator): count from there."""
        with self.lock:
            if self.tracker.up.get(self.address) != up:
                self.tracker.up[self.address], self.tracker.streak[self.address] = up, 0

    def _hold(self, result: hpc_health.Probe) -> None:
        """Undo a down transition while this director reaches no real server: still up, one
        failure from down (it goes at the next failure once another server answers)."""
        self.tracker.up[self.address], self.tracker.streak[self.address] = True, self.tracker.fall - 1
        if not self.held:
            log.warning("hpc_lvs_health: %s:%s fails (%s) like every other real server: this director's "
                        "own link or route, not theirs; not taken out, not reported", self.address, self.port,
                        result.detail)
        self.held = True

    def run(self) -> None:
        conf = self.supervisor.conf
        interval, timeout = float(conf["interval"]), float(conf["probe_timeout"])
        connect = float(conf["connect_timeout"])
        while not self.stopped.is_set():
            started = time.monotonic()
            result = hpc_health.probe_ssh(self.address, self.port, timeout, connect)
            with self.lock:
                self.failing = not result.ok
                change = self.tracker.observe(self.address, result.ok)
                if change == "down" and self.supervisor.blind(self.address):
                    self._hold(result)
                    change = None
                elif result.ok:
                    self.held = False
                if change and not self.stopped.is_set():
                    self.supervisor.transition(self.address, self.port, change, result)
            self.stopped.wait(max(0.0, interval - (time.monotonic() - started)))


class Supervisor(threading.Thread):
    """Keeps one prober per target of the last applied table, applies transitions, sends events."""

    def __init__(self, opts: dict, salt: dict, conf: dict) -> None:
        super().__init__(name=THREAD_NAME, daemon=True)
        self.opts, self.salt, self.conf = opts, salt, {**SETTINGS, **conf}  # defaults for what is not set
        self.key = tuple(sorted(self.conf.items()))
        self.probers: dict[tuple[str, int], Prober] = {}
        self.stopped = threading.Event()
        self.outbox: queue.Queue = queue.Queue()
        self.called = time.monotonic()  # the last beacon() call that kept this supervisor

    def blind(self, address: str) -> bool:
        """Whether every other real server's last probe failed too (there are others)."""
        failing: dict[str, bool] = {}
        for prober in list(self.probers.values()):
            if prober.address != address:
                failing[prober.address] = failing.get(prober.address, False) or prober.failing
        return bool(failing) and all(failing.values())

    def transition(self, address: str, port: int, change: str, result: hpc_health.Probe) -> None:
        """Weight 0 (or back) in this director's table now, then the event (from the sender).
        Nothing once this supervisor was stopped: a prober whose probe was in flight when a
        module refresh replaced its supervisor would otherwise act beside its successor's. A
        likely source of one change reported twice, seen once in the lab (2026-12-04, seconds
        after a module refresh: the second report said "no change")."""
        if self.stopped.is_set():
            return
        up = change == "up"
        try:
            applied = self.salt["ipvs.set_health"](address, up, detail=result.detail)
        except Exception as exc:  # noqa: BLE001 - the event still goes: the master's recheck retries
            log.exception("hpc_lvs_health: set_health %s %s failed", address, change)
            applied = {"changes": [], "errors": [f"set_health failed: {exc}"], "problems": []}
        log.warning("hpc_lvs_health: %s:%s %s (%s): %s", address, port, change, result.detail,
                    applied.get("changes") or applied.get("errors") or "no change")
        self.outbox.put((TAG.format(address=address, state=change), {
            "address": address, "port": port, "state": change, "detail": result.detail, "time": time.time(),
            "changes": applied.get("changes", []), "errors": applied.get("errors", []),
            "problems": applied.get("problems", [])}))

    def run(self) -> None:
        threading.Thread(target=self._send, name=f"{THREAD_NAME}_sender", daemon=True).start()
        while not self.stopped.is_set():
            if time.monotonic() - self.called > STALE:
                log.warning("hpc_lvs_health: beacon not called for %.0f s (disabled or removed): probes stop", STALE)
                break
            try:
                self._rescan()
            except Exception:  # noqa: BLE001 - the next rescan tries again; probers keep going
                log.exception("hpc_lvs_health: rescan failed")
            self.stopped.wait(RESCAN)
        for prober in self.probers.values():
            prober.stopped.set()
        self.outbox.put(None)

    def _rescan(self) -> None:
        targets = {(t["address"], int(t["port"])) for t in self.salt["ipvs.health_targets"]()}
        dead = set(self.salt["ipvs.overrides"]()["dead"])
        for target in [t for t in self.probers if t not in targets]:
            self.probers.pop(target).stopped.set()
        for (address, port) in sorted(targets):
            prober = self.probers.get((address, port))
            if prober is None:
                prober = self.probers[(address, port)] = Prober(self, address, port, address not in dead)
                prober.start()
            else:
                prober.resync(address not in dead)

    def _send(self) -> None:
        """Events go from this thread: a slow master never delays a prober."""
        import salt.utils.event

        with salt.utils.event.get_event("minion", opts=self.opts, listen=False) as bus:
            while (item := self.outbox.get()) is not None:
                tag, data = item
                bus.fire_master(hpc_signed.sign(self.opts, tag, data), tag)  # proof of sender


def supervisors() -> list[threading.Thread]:
    """Every live supervisor of this process, whichever copy of this module started it."""
    return [t for t in threading.enumerate() if t.name == THREAD_NAME and t.is_alive()]


def beacon(config):
    """Starts (or restarts) the supervisor; the events come from its probers, not from this call.
    One per minion process: the one of this module's code with this config is kept, any other
    (an older config, or started by the copy of this module a sync replaced) is stopped."""
    conf = {**SETTINGS, **{k: v for k, v in hpc_beacons.merged(config).items() if k in SETTINGS}}
    key = tuple(sorted(conf.items()))
    running = supervisors()
    keep = next((t for t in running if type(t) is Supervisor and t.key == key and not t.stopped.is_set()), None)
    for thread in running:
        if thread is not keep:
            thread.stopped.set()
    if keep is not None:
        keep.called = time.monotonic()
    else:
        # The functions themselves, looked up here: ``__salt__`` means nothing in another thread
        # (Salt's loader context is per call), a looked-up function carries its loader along.
        functions = {name: __salt__[name] for name in FUNCTIONS}
        Supervisor(__opts__, functions, conf).start()
    return []
