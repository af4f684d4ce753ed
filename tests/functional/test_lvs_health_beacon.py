"""The directors' health beacon (hpc_lvs_health) against a real listening socket on loopback:
a server that stops answering is reported dead within the fall count, comes back within the
rise count, and a record that says otherwise (the master's recheck) is followed. The minion's
functions are a dict standing for ``__salt__``; the event goes to a list instead of the bus."""

from __future__ import annotations

import importlib.util
import logging
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from testlib import ROOT

spec = importlib.util.spec_from_file_location("hpc_lvs_health", ROOT / "_beacons" / "hpc_lvs_health.py")
beacon = importlib.util.module_from_spec(spec)
spec.loader.exec_module(beacon)
# Salt's deferred log handler flushes after pytest closed the streams: the beacon's warnings
# stay out of it here.
beacon.log = logging.getLogger("test_lvs_health_beacon")
beacon.log.propagate = False

CONF = {"interval": 0.05, "probe_timeout": 0.2, "fall": 2, "rise": 2}


class Sshd:
    """A listener answering every connection with an SSH banner; ``stop()`` closes it (refused)."""

    def __init__(self, port: int = 0, address: str = "127.0.0.1") -> None:
        self.address = address
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 test\r\n")

    def stop(self) -> None:
        self.sock.close()


class Minion:
    """``__salt__`` of a director: the targets, the overrides record, and set_health's calls."""

    def __init__(self, port: int, targets: list[tuple[str, int]] | None = None) -> None:
        self.port, self.dead, self.calls = port, {}, []
        self.targets = targets or [("127.0.0.1", port)]
        self.lock = threading.Lock()

    def functions(self) -> dict:
        return {"ipvs.health_targets": lambda: [{"address": a, "port": p} for a, p in self.targets],
                "ipvs.overrides": lambda: {"dead": dict(self.dead), "drained": {}, "load": {}},
                "ipvs.set_health": self.set_health}

    def set_health(self, address, up, detail=""):
        with self.lock:
            self.calls.append((address, up, detail, time.monotonic()))
            if up:
                self.dead.pop(address, None)
            else:
                self.dead[address] = {"since": time.time(), "detail": detail}
        return {"changes": [f"update real server ... -w {1 if up else 0}"], "errors": [], "problems": []}


class Quiet(beacon.Supervisor):
    """Events to a list, not to a minion's event bus; as if Salt called the beacon every second."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.sent: list[tuple[str, dict]] = []
        self.called = float("inf")

    def _send(self) -> None:
        while (item := self.outbox.get()) is not None:
            self.sent.append(item)


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def director():
    sshd = Sshd()
    minion = Minion(sshd.port)
    supervisor = Quiet({}, minion.functions(), dict(CONF))
    supervisor.start()
    yield sshd, minion, supervisor
    supervisor.stopped.set()
    supervisor.join(2)
    for prober in supervisor.probers.values():
        prober.join(2)
    sshd.stop()


def test_a_live_server_is_left_alone(director):
    _sshd, minion, _supervisor = director
    time.sleep(0.5)  # ~10 probes
    assert minion.calls == []


def test_a_server_that_stops_answering_is_taken_out_within_the_fall_count_and_reported(director):
    sshd, minion, supervisor = director
    time.sleep(0.2)
    stopped = time.monotonic()
    sshd.stop()
    assert wait_for(lambda: minion.calls, 1.0), "no set_health after sshd stopped"
    address, up, detail, when = minion.calls[0]
    assert (address, up, detail) == ("127.0.0.1", False, "refused")
    assert when - stopped < 2 * CONF["interval"] + 0.1  # two probes, then at once
    assert wait_for(lambda: supervisor.sent, 1.0)
    tag, data = supervisor.sent[0]
    assert tag == "hpc/lvs/health/127.0.0.1/down" and data["detail"] == "refused" and data["changes"]


def test_it_comes_back_within_the_rise_count(director):
    sshd, minion, supervisor = director
    sshd.stop()
    assert wait_for(lambda: minion.calls, 1.0)
    sshd.sock = Sshd(sshd.port).sock  # closed by the fixture
    assert wait_for(lambda: len(minion.calls) == 2, 1.0), minion.calls
    assert minion.calls[1][:2] == ("127.0.0.1", True)
    assert wait_for(lambda: len(supervisor.sent) == 2, 1.0)
    assert supervisor.sent[1][0] == "hpc/lvs/health/127.0.0.1/up"


def test_a_record_that_says_dead_while_it_answers_is_corrected_by_the_probes(director):
    """The master's recheck or a restart left it dead in the record: the prober counts from
    there, and the server's answers bring its weight back."""
    _sshd, minion, _supervisor = director
    minion.dead["127.0.0.1"] = {"since": 0, "detail": "refused"}
    assert wait_for(lambda: minion.calls, beacon.RESCAN + 1.0)
    assert minion.calls[0][:2] == ("127.0.0.1", True)


@pytest.fixture
def pool():
    """Three real servers on three loopback addresses, one supervisor probing them all."""
    servers = [Sshd(address=f"127.0.0.{i}") for i in (1, 2, 3)]
    minion = Minion(0, [(s.address, s.port) for s in servers])
    # fall 4: the other prober has surely failed once before this one's 4th failure (with fall 2,
    # a prober starved for one interval on a loaded machine would make it a race)
    supervisor = Quiet({}, minion.functions(), {**CONF, "fall": 4})
    supervisor.start()
    assert wait_for(lambda: len(supervisor.probers) == 3, 1.0)
    yield servers, minion, supervisor
    supervisor.stopped.set()
    supervisor.join(2)
    for server in servers:
        server.stop()


def test_a_director_that_reaches_no_server_blames_itself(pool):
    """One server dies: taken out and reported. Then the other two fail too (this director's own
    link, as far as it can tell): neither is taken out nor reported."""
    servers, minion, supervisor = pool
    time.sleep(0.2)
    servers[0].stop()
    assert wait_for(lambda: minion.calls, 1.0), "a lone dead server was not taken out"
    assert [c[:2] for c in minion.calls] == [("127.0.0.1", False)]
    for server in servers[1:]:
        server.stop()
    time.sleep(20 * CONF["interval"] + 0.3)  # many times the fall count
    assert [c[:2] for c in minion.calls] == [("127.0.0.1", False)], minion.calls
    assert [tag for tag, _ in supervisor.sent] == ["hpc/lvs/health/127.0.0.1/down"]


def test_probes_stop_when_salt_no_longer_calls_the_beacon():
    """beacons.disable_beacon or the formula's clean: no beacon() call for STALE seconds."""
    sshd = Sshd()
    supervisor = Quiet({}, Minion(sshd.port).functions(), dict(CONF))
    supervisor.start()
    try:
        assert wait_for(lambda: supervisor.probers, 1.0)
        supervisor.called = time.monotonic() - beacon.STALE - 1
        assert wait_for(lambda: not supervisor.is_alive(), beacon.RESCAN + 1.0)
        assert wait_for(lambda: not any(p.is_alive() for p in supervisor.probers.values()), 1.0)
    finally:
        supervisor.stopped.set()
        sshd.stop()


def test_one_supervisor_per_minion_a_new_config_replaces_the_old_one(monkeypatch):
    started = []
    monkeypatch.setattr(beacon, "Supervisor", type("S", (Quiet,), {"start": lambda self: started.append(self)}))
    monkeypatch.setattr(beacon, "__opts__", {}, raising=False)
    monkeypatch.setattr(beacon, "__salt__", Minion(1).functions(), raising=False)
    beacon.beacon([{"interval": 0.5}])
    assert len(started) == 1 and started[0].conf["interval"] == 0.5 and started[0].conf["fall"] == 2


def test_a_replaced_supervisor_s_last_probe_changes_nothing_and_reports_nothing(director):
    """A module refresh stops the supervisor while one of its probes is in flight: that probe's
    verdict is its successor's to act on, not this one's (the table changed once, one report)."""
    sshd, minion, supervisor = director
    assert wait_for(lambda: supervisor.probers, 1.0)
    supervisor.stopped.set()
    supervisor.transition("127.0.0.1", sshd.port, "down", SimpleNamespace(detail="refused"))
    time.sleep(0.1)
    assert minion.calls == [] and supervisor.sent == []


def test_bad_settings_are_refused():
    assert beacon.validate([{"interval": 0}])[0] is False
    assert beacon.validate([{"fall": 1.5}])[0] is False
    assert beacon.validate([{"interval": 0.25, "rise": 3}]) == (True, "valid")
