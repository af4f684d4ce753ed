"""Call this project's execution modules in-process with a given minion id and pillar, as the
minion would (Salt's loader, our _modules and _utils), and print the result as JSON.

Usage: saltcall.py MINION_ID PILLAR_JSON_FILE FUNCTION [key=value ...]
Used by functional tests inside throwaway network namespaces (``ip netns exec``). The cachedir
(what modules record, e.g. hpc_applied) is ``cache/`` beside the pillar file: one per test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import salt.config
import salt.loader

ROOT = Path(__file__).resolve().parent.parent


def loaders(minion_id: str, pillar: dict, cache: str) -> dict:
    opts = salt.config.minion_config(None)
    opts.update(id=minion_id, file_client="local", cachedir=cache, pillar=pillar, grains={},
                module_dirs=[str(ROOT / "_modules")], utils_dirs=[str(ROOT / "_utils")],
                states_dirs=[str(ROOT / "_states")])
    utils = salt.loader.utils(opts)
    funcs = salt.loader.minion_mods(opts, utils=utils)
    return funcs


def main() -> int:
    minion_id, pillar_file, function, *args = sys.argv[1:]
    kwargs = dict(a.split("=", 1) for a in args)
    kwargs = {k: json.loads(v) if v in ("true", "false") else v for k, v in kwargs.items()}
    cache = Path(pillar_file).parent / "cache"  # kept across calls, like a minion's cachedir
    funcs = loaders(minion_id, json.loads(Path(pillar_file).read_text()), str(cache))
    if "event.send" in funcs:  # no master here: record the event instead of sending it
        funcs["event.send"] = lambda tag, data=None, **kw: print(json.dumps({"event": tag}), file=sys.stderr)
    print(json.dumps(funcs[function](**kwargs), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
