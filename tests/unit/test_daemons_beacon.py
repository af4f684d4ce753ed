"""The hpc_daemons beacon: which checks of a daemon make an event, and finding it in /proc."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time

from testlib import ROOT

import hpc_signed

spec = importlib.util.spec_from_file_location("hpc_daemons", ROOT / "_beacons" / "hpc_daemons.py")
beacon = importlib.util.module_from_spec(spec)
spec.loader.exec_module(beacon)


def run(checks, repeat=10):
    """Events for a series of (time, alive) checks of one daemon."""
    memory, events = None, []
    for now, alive in checks:
        event, memory = beacon.transition(memory, alive, now, repeat)
        if event:
            events.append((now, event))
    return events


def test_death_fires_once_then_every_repeat_and_recovery_once():
    checks = [(0, True), (1, False), (2, False), (11, False), (12, True), (13, True)]
    assert run(checks) == [(1, "dead"), (11, "dead"), (12, "alive")]


def test_a_daemon_never_seen_running_is_not_revived():
    assert run([(0, False), (1, False), (30, False)]) == []
    assert run([(0, False), (1, True), (2, False)]) == [(2, "dead")]


def test_running_matches_the_command_line(tmp_path):
    for pid, cmdline in (("12", b"/usr/sbin/keepalived\0--dont-fork\0"), ("13", b""), ("self", b"x")):
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "cmdline").write_bytes(cmdline)
    assert beacon.running("^/usr/sbin/keepalived", str(tmp_path))
    assert not beacon.running("^/usr/sbin/conntrackd", str(tmp_path))


def test_running_sees_a_real_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "hpc-daemon-probe"])
    try:
        deadline = time.monotonic() + 5  # until the child has exec'd (its cmdline is the parent's before)
        while not beacon.running("hpc-daemon-probe") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert beacon.running("hpc-daemon-probe")
    finally:
        child.kill()
        child.wait()
    assert not beacon.running(f"hpc-daemon-probe-{os.getpid()}")


def test_the_event_is_signed(keys):
    sent = []
    beacon.__salt__ = {"event.send": lambda tag, data: sent.append((tag, data)), "saltutil.is_running": lambda fun: []}
    beacon.__opts__ = keys["opts"]["labcn2"]
    beacon._STATE.clear()
    config = [{"service": "probe"}, {"sig": "^/nonexistent/daemon$"}]
    beacon._STATE["probe"] = {"alive": True, "fired": 0.0}
    beacon.beacon(config)
    (tag, data), = sent
    assert tag == "hpc/daemon/probe/dead"
    assert hpc_signed.Verifier(keys["master_pki"]).verify(tag, data).minion == "labcn2"


def test_config_validation():
    assert beacon.validate([{"service": "keepalived"}, {"sig": "^/usr/sbin/keepalived"}])[0]
    assert not beacon.validate([{"service": "keepalived"}])[0]
    assert not beacon.validate([{"service": "x"}, {"sig": "("}])[0]


def test_a_daemon_down_while_a_state_job_runs_is_left_to_that_job(monkeypatch):
    """A restart by an init script leaves the daemon down for seconds: no revival during the
    state (or service) job; still down after it -> dead at the next check."""
    sent, jobs, alive = [], {"state.*": [{"fun": "state.apply"}]}, {"now": True}
    monkeypatch.setattr(beacon, "running", lambda sig: alive["now"])
    monkeypatch.setattr(beacon, "_STATE", {})
    monkeypatch.setattr(beacon.hpc_signed, "sign", lambda opts, tag, data: data, raising=False)
    beacon.__salt__ = {"saltutil.is_running": lambda fun: jobs.get(fun, []),
                       "event.send": lambda tag, data: sent.append(tag)}
    beacon.__opts__ = {}
    config = [{"service": "dnsmasq"}, {"sig": "dnsmasq"}]
    beacon.beacon(config)  # seen running
    alive["now"] = False
    beacon.beacon(config)
    assert sent == []
    jobs.clear()
    beacon.beacon(config)
    assert sent == ["hpc/daemon/dnsmasq/dead"]
