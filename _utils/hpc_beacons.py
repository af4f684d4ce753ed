"""What our beacons share. Salt hands a beacon its configuration as written under ``beacons:``,
usually the list form (one single-key dict per setting); a beacon reads it as one dict."""

from __future__ import annotations

from typing import Any

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")


def merged(config: Any) -> dict[str, Any]:
    """The settings of a beacon's configuration, list form or dict form, as one dict (later
    items win; anything that is not a dict, such as Salt's own markers, is skipped)."""
    out: dict[str, Any] = {}
    for item in config if isinstance(config, list) else [config]:
        if isinstance(item, dict):
            out.update(item)
    return out
