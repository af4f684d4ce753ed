"""Each lab host's own /proc/loadavg, computed from its own tasks as the kernel computes the machine's.

/proc/loadavg is not namespaced: without this, every lab host reads the machine's load average,
and a Salt beacon reporting a frontend's load would report the same figure on every frontend
(on a real host it reports that host's). So, as LXCFS does for containers, one daemon per run,
in the root namespaces: every LOAD_FREQ (5 s) it counts, for each live host of the run, the
tasks (threads) in state R or D whose PID namespace is the host's, and feeds that count to the
kernel's calc_load (same fixed point, same constants, same rounding). It writes the host's line,
in /proc/loadavg's format, in place into ``<run>/hosts/<host>/loadavg``, which host.py's SETUP
bind-mounts over the host's /proc/loadavg.

Run: ``python -m hpclab.loadavg <run dir>/`` (``start(run)`` does it, detached, and records the
PID). It exits by itself once the run's directory is gone or no host of the run is alive.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .host import LOADAVG_WIDTH, _record_process, _started, same_process
from .registry import Record, Run

LOAD_FREQ = 5.0  # seconds between samples, the kernel's LOAD_FREQ (5*HZ+1 ticks)
# include/linux/sched/loadavg.h: 11-bit fixed point; EXP_n = FIXED_1 * exp(-5 s / n min).
FSHIFT = 11
FIXED_1 = 1 << FSHIFT
EXPS = (1884, 2014, 2037)  # EXP_1, EXP_5, EXP_15


def calc_load(load: int, exp: int, active: int) -> int:
    """kernel/sched/loadavg.c's calc_load: one decay step; ``active`` is in fixed point."""
    newload = load * exp + active * (FIXED_1 - exp)
    if active >= load:
        newload += FIXED_1 - 1  # the kernel rounds up while the load rises, so it can reach ``active``
    return newload // FIXED_1


def _fixed(load: int) -> str:
    # fs/proc/loadavg.c: adds FIXED_1/200 (rounding to the hundredth), then LOAD_INT.LOAD_FRAC.
    load += FIXED_1 // 200
    return f"{load >> FSHIFT}.{((load & (FIXED_1 - 1)) * 100) >> FSHIFT:02d}"


def render(loads: tuple[int, int, int], running: int, total: int, last_pid: int) -> bytes:
    """One /proc/loadavg line, padded with spaces to LOADAVG_WIDTH bytes (newline included).

    Always the same length: the line is rewritten in place, and a reader must never see a
    shorter file (or the tail of a longer line)."""
    text = f"{' '.join(map(_fixed, loads))} {running}/{total} {last_pid}"
    return (text[: LOADAVG_WIDTH - 1].ljust(LOADAVG_WIDTH - 1) + "\n").encode()


# ---------------------------------------------------------------- counting tasks


@dataclass
class Sample:
    running: int = 0  # tasks in R
    blocked: int = 0  # tasks in D (the kernel's nr_uninterruptible)
    total: int = 0  # tasks (threads)
    last_pid: int = 1  # highest PID inside the host's PID namespace


@dataclass
class Proc:
    ns: str  # /proc/<pid>/ns/pid, e.g. "pid:[4026532711]"
    inner: int | None = None  # its PID inside that namespace (NSpid's last), read once if it is a host's


def _pid_ns(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except PermissionError:
        return ""  # a process of the machine's that even root may not inspect (e.g. its PID 1): not ours


def _inner_pid(pid: str) -> int:
    with open(f"/proc/{pid}/status", "rb") as fh:
        nspid = next(line for line in fh if line.startswith(b"NSpid:"))
    return int(nspid.split()[-1])


def _state_and_threads(pid: str) -> tuple[str, int]:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    return fields[0].decode(), int(fields[17])  # stat fields 3 (state) and 20 (num_threads)


def _thread_states(pid: str) -> list[str]:
    states = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as fh:
                states.append(fh.read().rsplit(b")", 1)[1].split(maxsplit=1)[0].decode())
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread exited mid-scan
    return states


def _count(sample: Sample, pid: str, inner: int) -> None:
    state, threads = _state_and_threads(pid)
    # Most processes have one thread: its state is the process's, no task/ directory to list.
    states = [state] if threads == 1 else _thread_states(pid)
    sample.running += states.count("R")
    sample.blocked += states.count("D")
    sample.total += len(states)
    sample.last_pid = max(sample.last_pid, inner)


@dataclass
class Scanner:
    """Who is in which PID namespace, cached: the namespace of a process never changes, so only
    the processes new since the last scan cost a readlink (and, a host's, a read of status).
    Every process's namespace is cached, not only the hosts': a host recorded after its first
    processes were scanned (PID 1 exists before its record) still gets them counted."""

    # Keyed by PID and the inode of /proc/<pid>: a reused PID (pid_max may be 32768) is a new
    # process with a new procfs inode, so it is never mistaken for the one cached.
    cache: dict[tuple[str, int], Proc] = field(default_factory=dict)

    def scan(self, namespaces: set[str]) -> dict[str, Sample]:
        """A Sample per PID namespace of ``namespaces`` (links of /proc/<pid>/ns/pid)."""
        samples = {ns: Sample() for ns in namespaces}
        seen: dict[tuple[str, int], Proc] = {}
        with os.scandir("/proc") as entries:
            for entry in entries:
                if entry.name.isdigit():
                    self._one(entry, namespaces, samples, seen)
        self.cache = seen  # forget the processes gone
        return samples

    def _one(self, entry: os.DirEntry, namespaces: set[str], samples: dict[str, Sample],
             seen: dict[tuple[str, int], Proc]) -> None:
        key = (entry.name, entry.inode())
        try:
            proc = self.cache.get(key) or Proc(_pid_ns(entry.name))
            seen[key] = proc
            if proc.ns in namespaces:
                if proc.inner is None:
                    proc.inner = _inner_pid(entry.name)
                _count(samples[proc.ns], entry.name, proc.inner)
        except (FileNotFoundError, ProcessLookupError):
            pass  # exited mid-scan (its host may be going too)


# ---------------------------------------------------------------- hosts and files


@dataclass
class Hosts:
    """The run's hosts, from its records (host.py: process ``<netns>:init`` with ``host=<name>``).

    Re-read whenever the registry changed, so a host started after the daemon (``lab up
    --compute``) is picked up; a registry caught mid-append or mid-removal keeps the last read."""

    run: Run
    stamp: tuple[int, int] | None = None  # the registry's size and mtime when last read
    inits: dict[str, Record] = field(default_factory=dict)

    def live(self) -> dict[str, int]:
        """Host name -> root-ns PID of its PID 1, for the hosts alive now."""
        self._reload()
        return {name: rec.pid for name, rec in self.inits.items() if same_process(rec.pid, _started(rec.extra))}

    def _reload(self) -> None:
        try:
            st = self.run.path.stat()
            if (st.st_size, st.st_mtime_ns) == self.stamp:
                return
            records = self.run.records()
        except (FileNotFoundError, ValueError):
            return  # gone (the run is being torn down) or a line half-written: next cycle
        self.stamp = (st.st_size, st.st_mtime_ns)
        self.inits = {rec.extra["host"]: rec for rec in records
                      if rec.kind == "process" and rec.name.endswith(":init") and "host" in rec.extra}


def host_file(run: Run, name: str) -> Path:
    return run.dir / "hosts" / name / "loadavg"


def write_in_place(path: Path, line: bytes) -> None:
    """Overwrite ``path`` at offset 0, never create nor rename it: the host's bind mount holds
    this inode. No O_CREAT: a host whose directory is gone is gone."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, line, 0)
    finally:
        os.close(fd)


@dataclass
class HostLoad:
    loads: tuple[int, int, int] = (0, 0, 0)  # avenrun[0..2], fixed point

    def update(self, sample: Sample) -> bytes:
        active = (sample.running + sample.blocked) * FIXED_1
        self.loads = tuple(calc_load(load, exp, active) for load, exp in zip(self.loads, EXPS, strict=True))
        return render(self.loads, sample.running, sample.total, sample.last_pid)


def cycle(hosts: Hosts, scanner: Scanner, state: dict[str, HostLoad]) -> bool:
    """One LOAD_FREQ step for every live host (``state``: each one's averages, by PID namespace);
    False once there is none."""
    namespaces = {}
    for name, pid1 in hosts.live().items():
        try:
            namespaces[os.readlink(f"/proc/{pid1}/ns/pid")] = name
        except (FileNotFoundError, ProcessLookupError):
            continue  # died since hosts.live() looked
    if not namespaces:
        return False
    # By namespace, not by name: a host stopped and started again under its name starts from 0.
    for ns in set(state) - set(namespaces):
        del state[ns]
    for ns, sample in scanner.scan(set(namespaces)).items():
        line = state.setdefault(ns, HostLoad()).update(sample)
        with contextlib.suppress(FileNotFoundError):  # stopped mid-cycle: stop_host removed its dir
            write_in_place(host_file(hosts.run, namespaces[ns]), line)
    return True


def serve(run: Run) -> None:
    """Every LOAD_FREQ on a fixed schedule (a slow cycle does not shift the next ones) until the
    run's directory is gone or no host of it is alive."""
    hosts, scanner, state = Hosts(run), Scanner(), {}
    tick = time.monotonic()
    while run.dir.is_dir() and cycle(hosts, scanner, state):
        tick += LOAD_FREQ
        time.sleep(max(0.0, tick - time.monotonic()))


# ---------------------------------------------------------------- starting it


def start(run: Run) -> int:
    """Start the run's daemon, detached (its own session), and record its PID and start time
    (``<prefix>:loadavg``) so that teardown kills it by PID. Its argv holds the run's directory,
    which ``cluster.leftovers_of`` looks for in ``ps``."""
    lab_dir = Path(__file__).resolve().parents[1]
    argv = [sys.executable, "-m", "hpclab.loadavg", f"{run.dir}/"]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(lab_dir)}
    with (run.dir / "loadavg.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                cwd="/", start_new_session=True)
    _record_process(run, f"{run.prefix}:loadavg", proc.pid)
    return proc.pid


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m hpclab.loadavg RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    run = Run(run_dir.name, run_dir.parent)
    # comm (ps -o comm, top) carries the prefix too: "loadavg-<prefix>", at most 13 bytes.
    Path("/proc/self/comm").write_text(f"loadavg-{run.prefix}")
    serve(run)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
