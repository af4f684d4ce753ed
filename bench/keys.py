#!/usr/bin/env python3
"""Bench the master's answer to a boot storm of diskless nodes (``salt-run diskless.auth``, the
``salt/auth`` reactor): N registered nodes' new keys pending at once in Salt's real key store,
the example pillar grown to N diskless nodes in the master's pillar cache. Not a test:
``name=value`` lines, progress on stderr.

The reactor runs runner reactions in a pool of threads (``reactor_worker_threads``, default 10):
so does this bench, one ``auth`` call per node's event, with the shipped gathering window. For
each size, side by side in one run:

    keys_<N>_s              first event -> every key accepted
    keys_<N>_batches        how many accept calls Salt's key store saw
    keys_growth_ratio       (keys_<big>_s / big) / (keys_<small>_s / small): the cost per node
                            at the big size over the small one (1.0: linear; O(N^2) would be
                            big/small)

    bench/keys.py [--sizes 100,1000]

Everything lives under a temporary directory, removed at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "_utils"), str(ROOT / "bench"), str(ROOT / "tests")]

import salt.cache  # noqa: E402
import salt.config  # noqa: E402
import salt.key  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from scale import grow_pillar  # noqa: E402
from testlib import load_runner  # noqa: E402

import hpc_pillar  # noqa: E402
import hpc_register  # noqa: E402

WORKERS = 10  # Salt's reactor_worker_threads default


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _pillar(directory: Path) -> dict:
    data: dict = {}
    for path in sorted(directory.glob("*.sls")):
        if path.name != "top.sls":
            data.update(yaml.safe_load(path.read_text()))
    return data


def _runner(opts: dict):
    module = load_runner("diskless", opts)
    module._fire = lambda tag, data: None
    return module


class _NullBus:
    def __init__(self) -> None:
        self.fired = 0

    def fire_event(self, data: dict, tag: str) -> bool:
        self.fired += 1
        return True

    def destroy(self) -> None:
        pass


def storm(n: int, pub: str, scratch: Path) -> tuple[float, int]:
    """N pending keys, N auth events through a pool of WORKERS threads: (seconds, accept calls)."""
    root = scratch / f"n{n}"
    root.mkdir()
    (root / "master").write_text(f"root_dir: {root}\n")
    opts = salt.config.master_config(str(root / "master"))
    pillar = _pillar(grow_pillar(n, root / "pillar"))
    salt.cache.factory(opts).store("pillar", "labboot1", pillar)
    inventory = hpc_pillar.inventory(pillar)
    nodes = [f"labcn{i}" for i in range(1, n + 1)]
    grains = {m: hpc_register.autosign_values(inventory, "admin", [m])[0] for m in nodes}
    runner = _runner(opts)
    salt.key.Key.check_minion_cache = lambda self, preserve_minions=None: None
    # No master runs here: each key event Salt fires would wait ~1 s for a bus that is not there
    # (a real master's bus takes it in well under a millisecond). Counted, not sent.
    salt.key.Key.event = _NullBus()
    calls = []
    accept = salt.key.Key.accept
    salt.key.Key.accept = lambda self, **kw: calls.append(1) or accept(self, **kw)
    with salt.key.get_key(opts) as keys:
        for m in nodes:
            keys.cache.store("keys", m, {"pub": pub, "state": "pending"})
        runner._allowed()  # the pillar's pairs, as after the master's first pillar refresh
        events = [{"act": "pend", "id": m, "pub": pub, "autosign_grains": {"hpcnet_boot": grains[m]}} for m in nodes]
        started = time.monotonic()
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda e: runner.auth("salt/auth", e), events))
        took = time.monotonic() - started
        accepted = set(keys.list_keys()["minions"])
    salt.key.Key.accept = accept
    if accepted != set(nodes):
        raise SystemExit(f"bench/keys.py: {len(set(nodes) - accepted)} of {n} keys not accepted")
    return took, len(calls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    per_node = {}
    with tempfile.TemporaryDirectory(prefix="hpcnet-bench-keys-") as scratch:
        for n in sizes:
            log(f"{n} nodes' keys pending, {n} salt/auth events")
            took, batches = storm(n, pub, Path(scratch))
            per_node[n] = took / n
            print(f"keys_{n}_s={took:.3f}")
            print(f"keys_{n}_batches={batches}")
    if len(sizes) > 1:
        print(f"keys_growth_ratio={per_node[sizes[-1]] / per_node[sizes[0]]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
