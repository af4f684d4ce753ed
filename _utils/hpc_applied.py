"""What a subsystem last applied, kept on the host, and the lock its applies take.

Every path that re-applies without a new pillar (the schedule, the master's heal, the local heal
in the beacon) reads this record instead of the minion's in-memory pillar: Salt keeps that pillar
from the last ``saltutil.refresh_pillar``, not from the last highstate, so a scheduled job would
otherwise undo a pillar edit the highstate had just applied (issue 10, point 5). The record is
written under the subsystem's lock, by the apply that made it: whoever takes the lock next reads
the newest one, never an older one.

Kept in Salt's cachedir (``<cachedir>/hpcnet/applied/<subsystem>.json``, 0600, replaced
atomically). Losing it is safe: the next apply falls back to the pillar and writes it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

FORMAT = 1


def path(cachedir: str | os.PathLike, subsystem: str) -> Path:
    return Path(cachedir) / "hpcnet" / "applied" / f"{subsystem}.json"


def save(cachedir: str | os.PathLike, subsystem: str, record: dict[str, Any]) -> Path:
    """Replace the subsystem's record (written whole, fsynced, then renamed over the old one)."""
    target = path(cachedir, subsystem)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{subsystem}.")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({"format": FORMAT, **record}, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def load(cachedir: str | os.PathLike, subsystem: str) -> dict[str, Any] | None:
    """The last record, or None when there is none (or it is unreadable: the caller falls back
    to the pillar, which is what the record would have come from)."""
    try:
        record = json.loads(path(cachedir, subsystem).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == FORMAT else None


class Held:
    """A lock taken by ``exclusive``; ``release()`` lets the next one in before the block ends."""

    def __init__(self, fd: int, thread_lock: threading.Lock) -> None:
        self.fd, self.thread_lock, self.held = fd, thread_lock, True

    def release(self) -> None:
        if self.held:
            self.held = False
            fcntl.lockf(self.fd, fcntl.LOCK_UN)
            self.thread_lock.release()


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


def _forget_thread_locks() -> None:
    """In a forked child only the forking thread lives on: a thread lock another thread held at
    the fork would stay held for ever there (seen in the lab: heal jobs forked while the beacon's
    thread held it never ran). The child starts with fresh ones."""
    global _GUARD
    _GUARD = threading.Lock()
    _THREAD_LOCKS.clear()


os.register_at_fork(after_in_child=_forget_thread_locks)


@contextlib.contextmanager
def exclusive(lock: str | os.PathLike, wait: bool = True) -> Iterator[Held | None]:
    """Exclusive use of ``lock`` for the block, against other processes and other threads of this
    one; with ``wait`` off, yields None at once when another holds it.

    A POSIX record lock (``lockf``), not ``flock``: Salt forks its job processes from the minion
    while a beacon thread may hold the lock, and a forked child shares an flock with its parent
    (same open file) for as long as it keeps the inherited descriptor: measured in the lab, a
    heal job then waited for ever on the lock its own copy held, and so did every later heal.
    POSIX locks belong to a process and are never inherited. They do not exclude threads of one
    process: a thread lock per path does that, taken first."""
    path = os.fspath(lock)
    with _GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(path, threading.Lock())
    if not thread_lock.acquire(blocking=wait):
        yield None
        return
    held = None
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: held elsewhere
                yield None
                return
            held = Held(fd, thread_lock)
            yield held
        finally:
            if held is not None:
                held.release()
            os.close(fd)
    finally:
        if held is None:
            thread_lock.release()
