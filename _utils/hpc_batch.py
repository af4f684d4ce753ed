"""Many events, one action: the reactions of a storm gathered into one batch per key.

Salt's reactor runs runner reactions in a pool of threads of one process. The first reaction
for a key opens a batch and waits ``window`` seconds; those that come meanwhile join it and
return at once; the first one then acts for all (e.g. one list-targeted job for every node whose
IB link came back, instead of one job per node). Lives in a helper module (not the runner) so
the batch outlives the reactor's periodic reload of its runner loader.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable

_LOCK = threading.Lock()
_OPEN: dict[Hashable, list[str]] = {}


def gather(key: Hashable, item: str, window: float) -> list[str] | None:
    """The batch (sorted, without duplicates) if this caller opened it, after ``window``
    seconds; None if it joined a batch another caller acts for."""
    with _LOCK:
        if key in _OPEN:
            _OPEN[key].append(item)
            return None
        _OPEN[key] = [item]
    time.sleep(window)
    with _LOCK:
        return sorted(set(_OPEN.pop(key)))
