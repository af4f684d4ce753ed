"""Many events, one action: the reactions of a storm gathered into one batch per key.

Salt's reactor runs runner reactions in a pool of threads of one process. The first reaction
for a key opens a batch and waits until the storm is over: ``quiet`` seconds without a new
reaction joining, or ``cap`` seconds since it opened, whichever comes first. Those that join
meanwhile return at once; the first one then acts for all (e.g. one list-targeted job for every
node whose IB link came back, instead of one job per node).

Why a quiet gap and not a fixed window: the link-ups of one switch reboot reach the master over
a few hundred milliseconds (each node heals locally first, then sends), and every job is
published to every minion, which decrypts it to see whether it is targeted. A single flap pays
only ``quiet`` more. Measured on this machine it does not gather much yet (bench-storm: 0.90-0.95
jobs per event, as with a 20 ms window): Salt's reactor starts the runner reactions of a storm
0.2-0.25 s apart, one event at a time, so they rarely overlap. It gathers once reactions come
faster than ``quiet`` (a faster master, or a master engine in place of the reactor).

Lives in a helper module (not the runner) so the batch outlives the reactor's periodic reload of
its runner loader.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")


@dataclass
class _Batch:
    opened: float
    last: float
    items: list[str] = field(default_factory=list)


_LOCK = threading.Lock()
_OPEN: dict[Hashable, _Batch] = {}


def gather(key: Hashable, item: str, quiet: float, cap: float) -> list[str] | None:
    """The batch (sorted, without duplicates) if this caller opened it, once ``quiet`` seconds
    passed without a new item or ``cap`` seconds since it opened; None if it joined a batch
    another caller acts for."""
    now = time.monotonic()
    with _LOCK:
        if key in _OPEN:
            _OPEN[key].items.append(item)
            _OPEN[key].last = now
            return None
        batch = _OPEN[key] = _Batch(opened=now, last=now, items=[item])
    while True:
        with _LOCK:
            wait = min(batch.last + quiet, batch.opened + cap) - time.monotonic()
            if wait <= 0:
                del _OPEN[key]
                return sorted(set(batch.items))
        time.sleep(wait)
