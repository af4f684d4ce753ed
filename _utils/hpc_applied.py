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
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

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


@contextlib.contextmanager
def exclusive(lock: str | os.PathLike, wait: bool = True) -> Iterator[IO[str] | None]:
    """An flock on ``lock`` for the block (yields the open file); with ``wait`` off, yields None
    at once when another process or thread holds it."""
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    with open(lock, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield None
            return
        yield fh
