#!/usr/bin/env python3
"""Bench diskless image builds on this machine (not in the lab: mmdebstrap needs the Debian
mirror). Not a test: ``name=value`` lines, progress on stderr.

The image is the example pillar's ``compute`` (its packages plus hpc_image_build.BOOT_PACKAGES),
the phase scripts are the state tree's built-ins (salt/diskless/phases), built with the same code
as ``diskless.build`` (hpc_image_build.NativeRunner). Each round, side by side:

    reference_s          one plain ``mmdebstrap --variant=minbase --include=<the same packages>``
                         into a directory (what our base phase runs, alone)
    cold_s               a whole build into an empty store: every phase, squashfs, manifest
    image_cold_ratio     cold_s / reference_s of the same round (median over rounds)
    image_configure_s    after a site script of the configure phase changed: the rebuild
                         (configure alone, then the pack), on the last round's store
    image_mb             the squashfs's size (MB, 10^6 bytes)

    bench/image.py [--rounds R] [--mirror URL]

Everything lives under /var/tmp/hpcnet-bench-image-<random>/, removed at the end. Run as root.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "_utils")]

import hpc_image_build as build  # noqa: E402
from hpc_schema import Image  # noqa: E402

MIRROR = "http://deb.debian.org/debian"
# What diskless.build tells the scripts on a boot server: the lab's master, this venv's Salt and
# the packages our modules import (run with the checkout's .venv/bin/python).
ENV = {"HPCNET_MASTER": "10.11.0.1", "HPCNET_PYTHON_REQUIREMENTS": build.node_requirements()}


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def example_image() -> Image:
    spec = yaml.safe_load((ROOT / "pillar/diskless.sls").read_text())["diskless"]
    return Image(**next(i for i in spec["images"] if i["name"] == "compute"))


class Bench:
    def __init__(self, work: Path, image: Image, mirror: str) -> None:
        self.work, self.image, self.mirror = work, image, mirror

    def inputs(self, site: Path):
        return build.inputs(self.image, self.mirror, build.BOOT_PACKAGES, ROOT / "salt/diskless/phases", site,
                            ROOT / "salt/diskless/base")

    def reference(self, dest: Path) -> float:
        base, _, _ = self.inputs(self.work / "no-site")
        argv = ["mmdebstrap", "--mode=root", "--variant=minbase", "--include=" + ",".join(base["include"]),
                str(base["suite"]), str(dest), self.mirror]
        started = time.monotonic()
        subprocess.run(argv, check=True, capture_output=True)
        took = time.monotonic() - started
        shutil.rmtree(dest)
        return took

    def build(self, store: build.Store, site: Path) -> tuple[float, build.BuildPlan]:
        base, packages, bodies = self.inputs(site)
        plan, merged = build.plan_build(self.image.name, base, packages, bodies, store, ENV)
        started = time.monotonic()
        steps = build.changes(plan, store, self.image.keep, [])
        runner = build.NativeRunner(store.root / "work", base_files=ROOT / "salt/diskless/base")
        build.Build(plan, store, runner, base, merged, ENV).apply(steps)
        return time.monotonic() - started, plan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mirror", default=MIRROR)
    args = parser.parse_args()
    work = Path(f"/var/tmp/hpcnet-bench-image-{secrets.token_hex(3)}")
    work.mkdir(parents=True)
    try:
        bench = Bench(work, example_image(), args.mirror)
        site = work / "site"
        (site / "configure").mkdir(parents=True)
        refs, colds = [], []
        for n in range(args.rounds):
            refs.append(bench.reference(work / f"reference-{n}"))
            _say(f"round {n}: reference {refs[-1]:.1f} s")
            store = build.Store(work / f"store-{n}")
            took, plan = bench.build(store, site)
            colds.append(took)
            _say(f"round {n}: cold build {took:.1f} s -> {plan.version}")
            if n + 1 < args.rounds:
                shutil.rmtree(store.root)
        (site / "configure" / "50_motd").write_text("#!/bin/sh\necho 'bench: configure-only change' > /etc/motd\n")
        configure_s, plan = bench.build(store, site)
        packed = store.version(plan.image, plan.version) / "root.squashfs"
        print(f"packages={len(bench.inputs(site)[0]['include'])}")
        print(f"reference_s={statistics.median(refs):.1f}")
        print(f"cold_s={statistics.median(colds):.1f}")
        print(f"image_cold_ratio={statistics.median(c / r for c, r in zip(colds, refs, strict=True)):.2f}")
        print(f"image_configure_s={configure_s:.1f}")
        print(f"image_mb={packed.stat().st_size / 1e6:.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
