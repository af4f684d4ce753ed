"""Our ``_utils`` helpers as the last sync left them: the one way modules, states, runners and
beacons import them.

    from hpc_synced import hpc_context, hpc_routing

Why: Salt runs a module's file again after ``saltutil.sync_*`` (and in every job), but a plain
``import hpc_routing`` finds the copy already in ``sys.modules``: after a ``git pull`` and a sync
a long-running minion would run new modules on old helpers until restarted. Measured in Salt
3008.3 (master + minion, no restart): plain imports stayed stale in jobs once the minion's main
process had imported a helper (a beacon does), and forever with ``multiprocessing: False``;
Salt's ``__utils__`` loader re-reads only the utils file itself, not what it imports by name,
and cannot load our dataclass helpers at all.

How: this module never keeps a helper in its own namespace, so every ``from hpc_synced import
hpc_x`` calls the module-level ``__getattr__`` below. It forgets **every** ``hpc_*`` module when
any of their files changed since it was loaded (they import each other: old and new copies must
never mix), then imports the name again. Helpers are found next to this file by a finder on
``sys.meta_path`` that notes each file's mtime when it is found (Salt puts the utils directory on
``sys.path`` only while it runs a module file). Cost: about 0.2 ms per imported name.

This module itself is never reloaded: keep it small; changing it needs a minion restart.
Beacons import it through ``_beacons/_hpc_synced.py`` (Salt gives beacons no utils path).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading
from types import ModuleType
from typing import Any

PREFIX = "hpc_"
NAME = "hpc_synced"
HERE = os.path.dirname(os.path.abspath(__file__))


def _mtime(path: str | None) -> int | None:
    try:
        return os.stat(path).st_mtime_ns if path else None
    except OSError:
        return None


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``hpc_*`` modules in one directory, noting each file's mtime when it is found."""

    hpc_synced_finder = True

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.stamps: dict[str, int | None] = {}
        self.lock = threading.RLock()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if not name.startswith(PREFIX) or "." in name or name == NAME:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, [self.directory])
        if spec is not None:
            self.stamps[name] = _mtime(spec.origin)
        return spec


def _installed() -> _Finder:
    for finder in sys.meta_path:
        if getattr(finder, "hpc_synced_finder", False) and finder.directory == HERE:
            return finder
    finder = _Finder(HERE)
    sys.meta_path.insert(0, finder)
    return finder


_FINDER = _installed()


def forget_changed(prefix: str = PREFIX) -> list[str]:
    """Forget every ``prefix*`` module when one of their files changed; the names forgotten."""
    stamps = _FINDER.stamps
    ours = {n: m for n, m in list(sys.modules.items()) if n.startswith(prefix) and n != NAME and "." not in n}
    changed = [m for n, m in ours.items() if n not in stamps or stamps[n] != _mtime(getattr(m, "__file__", None))]
    if not changed:
        return []
    for module in changed:
        # A file rewritten within the same second at the same size keeps a .pyc that looks valid.
        with contextlib.suppress(Exception):
            os.remove(importlib.util.cache_from_source(module.__file__))
    for name in ours:
        sys.modules.pop(name, None)
        stamps.pop(name, None)
    importlib.invalidate_caches()
    return sorted(ours)


def __getattr__(name: str) -> ModuleType:
    if not name.startswith(PREFIX) or name == NAME:
        # Salt's loader probes modules for __virtual__ and the like: not ours to answer.
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _FINDER.lock:
        forget_changed()
        return importlib.import_module(name)
