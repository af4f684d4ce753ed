"""What one lab run made, so teardown removes exactly that, by name and PID.

A run is identified by its prefix (e.g. ``hl3f``). Everything the run creates
(namespace, bridge, veth, tap, process, mount, directory) is appended to
``<run_dir>/registry.jsonl`` *before* it is created, so a crash between the
record and the creation leaves at worst an entry whose object is missing,
which teardown tolerates. Teardown walks the records in reverse order.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

LAB_ROOT = Path(os.environ.get("HPCLAB_ROOT", "/var/tmp/hpclab"))
# The checkout this lab code runs from: its state tree, pillar and venv. Lab hosts and VMs see it
# live, at the same path (host.py, vm.py).
REPO = Path(__file__).resolve().parents[2]
PREFIX_MAX = 5  # link names are limited to 15 chars: prefix + '-' + 9 chars


@dataclass(frozen=True)
class Record:
    kind: str  # netns | bridge | link | tap | process | mount | dir
    name: str  # the object's name (or path for mount/dir, a label for process)
    pid: int | None = None
    extra: dict = field(default_factory=dict)


class Run:
    """The registry of one lab run."""

    def __init__(self, prefix: str, root: Path = LAB_ROOT) -> None:
        if not prefix.isalnum() or not prefix.islower() or len(prefix) > PREFIX_MAX:
            raise ValueError(f"lab prefix must be 1..{PREFIX_MAX} lowercase letters/digits (got {prefix!r})")
        self.prefix = prefix
        self.dir = root / prefix
        self.path = self.dir / "registry.jsonl"

    def name(self, suffix: str) -> str:
        """A kernel object name owned by this run: ``<prefix>-<suffix>``."""
        name = f"{self.prefix}-{suffix}"
        if len(name) > 15:
            raise ValueError(f"lab object name too long for the kernel: {name!r}")
        return name

    def record(self, kind: str, name: str, pid: int | None = None, **extra) -> Record:
        self.dir.mkdir(parents=True, exist_ok=True)
        rec = Record(kind, name, pid, extra)
        with self.path.open("a") as fh:
            fh.write(json.dumps(asdict(rec)) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return rec

    def records(self) -> list[Record]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            if line.strip():
                out.append(Record(**json.loads(line)))
        return out


def runs(root: Path = LAB_ROOT) -> list[str]:
    """Prefixes of every run that left a registry behind (live or dead)."""
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "registry.jsonl").exists())
