"""What the master's reactions remember from one event to the next.

Why not a dict in the runner module itself: Salt's reactor makes a new runner client every
``reactor_refresh_interval`` seconds (600 in etc/master.in, Salt's default is 60), and the new
client's loader runs ``_runners/hpc_react.py`` again *in the same module object*
(salt/loader/lazy.py reuses ``sys.modules``' entry). Every module-level dict and lock there is
then replaced by an empty one, even under a reaction still running in another thread. Measured
on Salt 3008.3 (tests/functional/test_reactor_memory.py). The result: a director the master had
asked to re-probe a dead frontend was, after a refresh, taken for one that had held the frontend
up all along, and was not asked again when it came back.

A helper is imported once and kept in ``sys.modules`` (hpc_synced), so what lives here lasts
as long as the master process. It is lost on a master restart, and when a sync changes any
``hpc_*`` helper (hpc_synced forgets them all so that old and new never mix). Each user says
what it does after such a loss.
"""

from __future__ import annotations

import threading

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

# The last state each LVS director reported for each real server:
# {address: {director: "up" | "down" | RECHECKED}} (hpc_react.lvs_health).
LAST_SEEN: dict[str, dict[str, str]] = {}
LAST_SEEN_LOCK = threading.Lock()
# One hpc_lvs_load.Reweigher per load policy, with its smoothing and rate limit; a pillar edit
# of the policy starts a new one (hpc_react.lvs_load).
REWEIGHERS: dict = {}
REWEIGHERS_LOCK = threading.Lock()
