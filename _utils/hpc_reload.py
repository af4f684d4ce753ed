"""Our ``_utils`` modules as the last sync left them, not as the minion first imported them.

Salt re-imports an execution module after ``saltutil.sync_*``, but the plain modules it imports
(``import hpc_routing``) stay in ``sys.modules`` for the minion's life: after a ``git pull`` and a
sync the minion would run new modules on old helpers until restarted. Each module that imports
our helpers calls ``forget_changed()`` first: if any ``hpc_*`` file changed since it was loaded
(or was loaded before this module could see it), every ``hpc_*`` module is forgotten (they import
each other) and the imports that follow load the synced files. Load times are taken by an import
hook at the moment each file is found. This module itself is never forgotten: keep it small.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

PREFIX = "hpc_"
_loaded_mtime: dict[str, int | None] = {}


def _mtime(path: str | None) -> int | None:
    try:
        return os.stat(path).st_mtime_ns if path else None
    except OSError:
        return None


class _StampOnLoad(importlib.abc.MetaPathFinder):
    """Finds ``hpc*`` modules like the default path finder does, noting their file's mtime."""

    hpc_reload_stamp = True

    def find_spec(self, name, path=None, target=None):
        if not name.startswith("hpc") or name == __name__:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            _loaded_mtime[name] = _mtime(spec.origin)
        return spec


if not any(getattr(finder, "hpc_reload_stamp", False) for finder in sys.meta_path):
    sys.meta_path.insert(0, _StampOnLoad())


def forget_changed(prefix: str = PREFIX) -> list[str]:
    """Forget every ``hpc_*`` module when one of their files changed; the names forgotten."""
    ours = {n: m for n, m in sys.modules.items() if n.startswith(prefix) and n != __name__}
    changed = [n for n, m in ours.items()
               if n not in _loaded_mtime or _loaded_mtime[n] != _mtime(getattr(m, "__file__", None))]
    if not changed:
        return []
    for name in ours:
        del sys.modules[name]
        _loaded_mtime.pop(name, None)
    return sorted(ours)
