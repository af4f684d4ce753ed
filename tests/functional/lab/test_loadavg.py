"""Each lab host reads its own /proc/loadavg (lab/hpclab/loadavg.py), not the machine's.

/proc/loadavg is not namespaced: without the run's loadavg daemon and the bind mount host.py
puts over each host's /proc/loadavg, a busy host and an idle one would both read the machine's
load, and a beacon reporting a frontend's load would behave unlike on a real host. ~25 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from test_hosts import run  # noqa: F401  (the fixture: a run with a prefix of its own, torn down)

from hpclab import loadavg
from hpclab.cluster import leftovers_of
from hpclab.host import LOADAVG_WIDTH, Host, host_exec, host_spawn, same_process, start_host, start_time, stop_host
from hpclab.host import teardown as teardown_run
from hpclab.registry import Run

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="lab hosts need root (namespaces, mounts, links)"),
]

BUSY_LOOP = ["nice", "-n", "19", "sh", "-c", "while :; do :; done"]


def cat_loadavg(host: Host) -> str:
    """The host's /proc/loadavg as a program inside it reads it."""
    proc = host_exec(host, ["cat", "/proc/loadavg"], timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def read_loadavg(host: Host) -> list[str]:
    return cat_loadavg(host).split()


def test_a_busy_host_shows_its_load_an_idle_one_does_not(run: Run, tmp_path: Path) -> None:  # noqa: F811
    busy = start_host(run, "busy")
    daemon = loadavg.start(run)
    idle = start_host(run, "idle")  # started after the daemon: it must pick the host up
    started = start_time(daemon)
    loops = [host_spawn(busy, BUSY_LOOP, tmp_path / "loop.log") for _ in range(4)]
    try:
        # 4 runnable tasks: 4 * (1 - exp(-5/60)^n) passes 1.0 at the 4th 5-s sample, <= 20 s.
        deadline = time.monotonic() + 30
        while float((busy_line := read_loadavg(busy))[0]) <= 1.0:
            assert time.monotonic() < deadline, f"busy host's load stays {busy_line}"
            assert float(read_loadavg(idle)[0]) < 0.5
            time.sleep(1)
        idle_line = read_loadavg(idle)
        assert float(idle_line[0]) < 0.5 and idle_line[3] != "1/1", idle_line  # not the initial line
        running, total = map(int, busy_line[3].split("/"))
        assert running >= 4 and total >= 5, busy_line  # the loops, and the host's PID 1 at least
        # Rewritten in place, always whole: one line of fixed length, padded before its newline.
        line = cat_loadavg(busy)
        assert len(line.encode()) == LOADAVG_WIDTH and line.endswith(" \n"), repr(line)
        assert same_process(daemon, started)
    finally:
        for pid in loops:  # by the root-ns PIDs host_spawn recorded
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    teardown_run(run)  # what `lab down` does: the daemon is killed by its recorded PID
    assert not same_process(daemon, started)
    assert leftovers_of(run.prefix) == []


def test_the_daemon_exits_once_no_host_is_left(run: Run) -> None:  # noqa: F811
    host = start_host(run, "a")
    daemon = loadavg.start(run)
    started = start_time(daemon)
    deadline = time.monotonic() + 2 * loadavg.LOAD_FREQ
    while (line := read_loadavg(host))[3] == "1/1":  # the idle line host.py starts it with
        assert time.monotonic() < deadline, f"the loadavg daemon never wrote {host.name}'s line"
        time.sleep(0.2)
    assert line[:3] == ["0.00", "0.00", "0.00"], line
    stop_host(host)
    deadline = time.monotonic() + 2 * loadavg.LOAD_FREQ
    while same_process(daemon, started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not same_process(daemon, started), "the loadavg daemon outlived the run's last host"
