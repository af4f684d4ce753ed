"""Lab hosts: a netns plus mount/UTS/IPC/PID namespaces over an overlay of /.

A lab host sees the real filesystem read-through, but its writes (to /etc,
/var, ...) land in its own upper dir, /run and /tmp are fresh tmpfs (so no
``/run/systemd/system``: Salt sees no systemd), and its hostname is its lab
name. Its /srv is a plain directory of its own (``<host dir>/srv``), as a
real server's data disk would be: the boot server builds images there with
overlayfs, which cannot take an overlay for its upper dir. PID 1 inside is
a small shell loop that reaps orphans, so daemons started there never pile
up as zombies; killing it ends the whole host.
Its /proc/loadavg is its own: a file of the host dir bound over it, which
the run's loadavg.py daemon keeps from the host's tasks (the kernel's is
not namespaced: the machine's load).

The checkout (``registry.REPO``: state tree, pillar, venv) is bind-mounted
read-only at its own path on top of all that: the overlay keeps the lower
layer's dentries, so a file replaced after ``lab up`` (``git checkout``,
``sed -i``, an editor's save: a new inode) would stay the old version there,
and a checkout under /tmp would be hidden by the host's tmpfs. Nothing in the
lab writes into the checkout (the daemons' root_dir is the run dir; the
venv's bytecode is compiled at install time).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import net
from .registry import LAB_ROOT, REPO, Run, runs

NSENTER = ("nsenter", "-m", "-u", "-i", "-n", "-p", "-r", "-w")
UNSHARE = "unshare --mount --uts --ipc --pid --fork --propagation private"
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}

# PID 1's final form: wait on a long sleep; `wait` also reaps orphaned children.
REAPER = 'trap "exit 0" TERM; while :; do sleep 86400 & wait; done'

# The host's own /proc/loadavg (loadavg.py): one line of fixed length, newline included, rewritten
# in place. The file starts as an idle host's line, padded alike.
LOADAVG_WIDTH = 64
LOADAVG_IDLE = "0.00 0.00 0.00 1/1 1".ljust(LOADAVG_WIDTH - 1) + "\n"

# Runs as PID 1 of the new PID namespace, inside the new mount namespace.
# $1=root $2=upper $3=work $4=hostname $5=REAPER $6=checkout $7=the host's loadavg file (outside
# the host; an idle line) $8=the host's /srv (outside it). Prints "ready", then logs.
# pivot_root and a lazy unmount of the old root leave the namespace holding
# only its own mounts: copies of the real tree (other runs' netns files, other
# labs' loop mounts) would otherwise stay pinned as long as this host lives.
SETUP = r"""set -e
mount --make-rprivate /
mount -t overlay "lab-$4" -o "lowerdir=/,upperdir=$2,workdir=$3" "$1"
# A Debian host without systemd has no systemctl: with one and no systemd running, Salt puts its
# service states in "offline" mode, where they report success and start nothing. A whiteout in
# this host's upper layer; the machine's own systemctl is untouched. runlevel (a link to
# systemctl here) becomes what sysvinit's prints in a container with no boot record in utmp.
rm -f "$1/usr/bin/systemctl" "$1/usr/sbin/runlevel"
printf '#!/bin/sh\necho unknown\nexit 1\n' > "$1/usr/sbin/runlevel"
chmod 755 "$1/usr/sbin/runlevel"
mount -t proc proc "$1/proc"
# /proc/loadavg is not namespaced: the host reads its own, which loadavg.py keeps from its tasks.
mount --bind "$7" "$1/proc/loadavg"
mount -t sysfs sysfs "$1/sys"
mount --rbind /dev "$1/dev"
mount -t tmpfs -o mode=1777 shm "$1/dev/shm"
mount -t tmpfs -o mode=755 run "$1/run"
mount -t tmpfs -o mode=1777 tmp "$1/tmp"
mkdir -p "$1/srv"
mount --bind "$8" "$1/srv"
# The checkout, live and read-only, after the tmpfs mounts (a checkout under /tmp is seen too).
mkdir -p "$1$6"
mount --bind "$6" "$1$6"
mount -o remount,bind,ro "$1$6"
mkdir -p "$1/run/sshd" "$1/run/lock"
cd "$1"
pivot_root . .
umount -l .
cd /
echo "$4" > /proc/sys/kernel/hostname
ip link set lo up
echo ready
exec >&2
exec /bin/sh -c "$5" "$0"
"""


@dataclass
class Host:
    run: Run
    name: str
    netns: str
    pid: int  # PID 1 of the host's PID namespace, as seen from the root
    dir: Path


# ---------------------------------------------------------------- processes


def _stat(pid: int) -> tuple[str, int] | None:
    """State and kernel start time (stat fields 3 and 22) of ``pid``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], int(fields[19])


def start_time(pid: int) -> int | None:
    """Kernel start time of ``pid``; None if it is gone or a zombie."""
    st = _stat(pid)
    return None if st is None or st[0] == "Z" else st[1]


def same_process(pid: int | None, started: int | None) -> bool:
    """True if ``pid`` is alive and still the process recorded (no PID reuse)."""
    return bool(pid) and started is not None and start_time(pid) == started


def _kill(pid: int | None, started: int | None, timeout: float = 10.0) -> None:
    """SIGKILL ``pid`` if it still is the recorded process; wait until it is dead."""
    deadline = time.monotonic() + timeout
    while pid and started is not None and time.monotonic() < deadline:
        st = _stat(pid)
        if st is None or st[1] != started:
            return
        if st[0] == "Z":
            # Dead: reap it if it is our child (unshare), else its parent will.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def _started(extra: dict) -> int | None:
    # "starttime" is the shared spelling; "start" is accepted from older records.
    return extra.get("starttime", extra.get("start"))


def _record_process(run: Run, label: str, pid: int, **extra) -> None:
    run.record("process", label, pid=pid, starttime=start_time(pid), **extra)


# ---------------------------------------------------------------- hosts


def _prepare_dirs(run: Run, name: str) -> tuple[Path, Path, Path, Path]:
    hdir = run.dir / "hosts" / name
    run.record("dir", str(hdir))
    root, upper, work = hdir / "root", hdir / "upper", hdir / "work"
    for d in (root, upper / "etc", work, srv_dir(run, name)):
        d.mkdir(parents=True, exist_ok=True)
    (hdir / "loadavg").write_text(LOADAVG_IDLE)  # bind-mounted over the host's /proc/loadavg
    # Written into the upper layer: the host's own /etc, the real one untouched.
    (upper / "etc" / "hostname").write_text(f"{name}\n")
    (upper / "etc" / "hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
    return hdir, root, upper, work


def _launch(netns: str, hdir: Path, root: Path, upper: Path, work: Path, name: str) -> int:
    """Start the host's namespaces; return the unshare parent's PID once ready."""
    enter = ["nsenter", f"--net=/run/netns/{netns}", "--", *UNSHARE.split()]
    args = ["/bin/sh", "-c", SETUP, f"lab:{netns}", str(root), str(upper), str(work)]
    args += [name, REAPER, str(REPO), str(hdir / "loadavg"), str(hdir / "srv")]  # srv_dir()
    with (hdir / "host.log").open("ab") as log:
        proc = subprocess.Popen(
            [*enter, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    # readline, not read: the unshare parent keeps its copy of the pipe open.
    with proc.stdout as ready:
        ok = ready.readline().strip() == b"ready"
    if not ok:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"lab host {name} failed: {(hdir / 'host.log').read_text()[-2000:]}")
    return proc.pid


def _holder(parent: int, timeout: float = 5.0) -> int:
    # unshare --fork: PID 1 of the host is unshare's only child.
    deadline = time.monotonic() + timeout
    while not (kids := _children(parent)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no PID 1 under unshare {parent}")
        time.sleep(0.005)
    return kids[0]


def netns_name(run: Run, name: str) -> str:
    """``<prefix>-<name>``: a netns is a file under /run/netns, not a link, so the 15-char
    link-name limit of ``run.name`` does not apply (``l1a2b-labclient1`` is 16)."""
    return f"{run.prefix}-{name}"


def srv_dir(run: Run, name: str) -> Path:
    """Host ``name``'s /srv, as this machine sees it (a plain directory, bound there)."""
    return run.dir / "hosts" / name / "srv"


def start_host(run: Run, name: str) -> Host:
    """Create lab host ``name``: netns ``<prefix>-<name>`` and its PID 1."""
    if not name.isalnum():
        raise ValueError(f"lab host names are letters/digits (got {name!r})")
    netns = netns_name(run, name)
    hdir, root, upper, work = _prepare_dirs(run, name)
    run.record("netns", netns)
    net.ip("netns", "add", netns)
    parent = _launch(netns, hdir, root, upper, work, name)
    _record_process(run, f"{netns}:unshare", parent)
    pid = _holder(parent)
    _record_process(run, f"{netns}:init", pid, host=name)
    return Host(run, name, netns, pid, hdir)


def load_host(run: Run, name: str) -> Host | None:
    """The live host ``name`` of ``run``, rebuilt from its records (e.g. in a CLI)."""
    netns = netns_name(run, name)
    for rec in reversed(run.records()):
        if rec.kind == "process" and rec.name == f"{netns}:init":
            if same_process(rec.pid, _started(rec.extra)):
                return Host(run, name, netns, rec.pid, run.dir / "hosts" / name)
            return None
    return None


def _enter(host: Host) -> list[str]:
    # -r/-w: root and cwd of the host's PID 1, i.e. its overlay root.
    return [*NSENTER, "-t", str(host.pid), "--"]


def host_exec(
    host: Host,
    argv: list[str],
    input: str | None = None,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``argv`` inside ``host`` (all its namespaces, its root); capture text."""
    proc = subprocess.Popen(
        [*_enter(host), *argv],
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or ENV,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        # nsenter's child shares its process group: kill both, not just nsenter.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _inner_to_outer(host: Host, inner: int) -> int:
    # The daemon was orphaned to the host's PID 1: find its root-netns PID.
    for pid in _children(host.pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            continue
        nspid = next(line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:"))
        if int(nspid[-1]) == inner:
            return pid
    raise RuntimeError(f"{host.name}: spawned process {inner} is already gone")


def host_spawn(host: Host, argv: list[str], log: Path | str, env: dict[str, str] | None = None) -> int:
    """Start a detached daemon inside ``host``; return and record its root-ns PID.

    ``argv`` must stay in the foreground (``sshd -D``, ``keepalived -n``): its
    PID is the one recorded. ``log`` is a path outside the host (opened here);
    stdout and stderr go there.
    """
    # Daemon output goes to stderr (the log), never to the pipe we read $! from.
    script = 'setsid "$@" </dev/null >&2 & echo $!'
    with Path(log).open("ab") as fh:
        proc = subprocess.run(
            [*_enter(host), "/bin/sh", "-c", script, "spawn", *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=fh,
            env=env or ENV,
            timeout=30,
            check=True,
        )
    inner = int(proc.stdout.split()[-1])
    pid = _inner_to_outer(host, inner)
    _record_process(host.run, f"{host.netns}:{Path(argv[0]).name}", pid, host=host.name)
    return pid


def stop_host(host: Host) -> None:
    """Kill the host (its PID 1 takes every process inside), drop its netns and dirs."""
    for rec in reversed(host.run.records()):
        if rec.kind == "process" and rec.name.startswith(f"{host.netns}:"):
            _kill(rec.pid, _started(rec.extra))
    _remove_netns(host.netns)
    _umount_under(host.dir)
    _remove_dir(host.run, host.dir)


# ---------------------------------------------------------------- teardown


def _remove_netns(netns: str) -> None:
    if not Path(f"/run/netns/{netns}").exists():
        return
    # Anything still in our netns is ours (e.g. a process recorded too late).
    pids = net.ip("netns", "pids", netns, check=False).stdout.split()
    for pid in map(int, pids):
        _kill(pid, start_time(pid))
    net.ip("netns", "del", netns, check=False)


def _mounts() -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4].replace("\\040", " ") for line in lines]


def _umount_under(path: Path) -> None:
    for mnt in sorted(_mounts(), reverse=True):
        if mnt == str(path) or mnt.startswith(f"{path}/"):
            subprocess.run(["umount", "-l", mnt], capture_output=True)


def _remove_dir(run: Run, path: Path) -> None:
    # rm -rf only inside this run's directory, or a recorded dir named after it.
    path = Path(path).resolve()
    ours = path.is_relative_to(run.dir.resolve()) or run.prefix in path.name
    if ours and path.exists() and len(path.parts) > 2:
        _umount_under(path)
        shutil.rmtree(path, ignore_errors=True)


def _remove(run: Run, kind: str, name: str, pid: int | None, extra: dict) -> None:
    if kind == "process":
        _kill(pid, _started(extra))
    elif kind == "netns":
        _remove_netns(name)
    elif kind in ("bridge", "link", "tap"):
        net.delete_link(run, name)
    elif kind == "mount":
        _umount_under(Path(name))
    elif kind == "dir":
        _remove_dir(run, Path(name))


def teardown(run: Run) -> None:
    """Remove everything ``run`` recorded, newest first, then its directory."""
    for rec in reversed(run.records()):
        try:
            _remove(run, rec.kind, rec.name, rec.pid, rec.extra)
        except (OSError, RuntimeError, ValueError):
            continue  # tolerate what is already gone; carry on with the rest
    _umount_under(run.dir)
    shutil.rmtree(run.dir, ignore_errors=True)


def run_alive(run: Run) -> bool:
    """True if any process the run recorded is still alive.

    Without a recorded start time a live PID counts as alive: when in doubt,
    a run is not reported as dead (but teardown will not kill that PID).
    """
    for rec in run.records():
        if rec.kind != "process" or not rec.pid:
            continue
        started = _started(rec.extra)
        if same_process(rec.pid, started) or (started is None and start_time(rec.pid)):
            return True
    return False


def leftovers(root: Path = LAB_ROOT) -> list[str]:
    """Prefixes of runs left behind whose recorded processes are all dead."""
    return [p for p in runs(root) if not run_alive(Run(p, root))]
