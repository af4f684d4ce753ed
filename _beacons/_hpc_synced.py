"""``hpc_synced`` for beacons: ``from _hpc_synced import hpc_x`` in a beacon.

Salt loads beacons without the utils directory on ``sys.path`` (salt/loader beacons(): no
extra_module_dirs), so a beacon cannot import ``hpc_synced`` by name. This file (skipped as a
beacon for its leading underscore, synced all the same) finds ``hpc_synced.py`` beside the
beacons' directory (``<extmods>/utils`` on a minion, ``_utils`` in a checkout), loads it once
per process, and stands for it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType


def _hpc_synced() -> ModuleType:
    if "hpc_synced" in sys.modules:
        return sys.modules["hpc_synced"]
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [os.path.join(top, d, "hpc_synced.py") for d in ("utils", "_utils")]
    path = next((p for p in paths if os.path.exists(p)), None)
    if path is None:
        raise ImportError(f"hpc_synced.py not found in {' or '.join(paths)}: run saltutil.sync_all")
    spec = importlib.util.spec_from_file_location("hpc_synced", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["hpc_synced"] = module
    spec.loader.exec_module(module)
    return module


sys.modules[__name__] = _hpc_synced()
