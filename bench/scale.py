#!/usr/bin/env python3
"""Bench how the pillar tooling scales with the cluster: the example pillar grown to N compute nodes.

Not a test. Prints ``name=value`` lines (progress goes to stderr):

    check_pillar_s            `tools/check_pillar.py pillar/` on the example (whole process, median of 3)
    check_pillar_s_<N>        the same on the example grown to N compute nodes
    check_pillar_ratio_<N>    check_pillar_s_<N> / check_pillar_s (target for 4096: <= 3)
    render_s, render_s_<N>    `salt-call --local --id labcn1 state.show_highstate` (whole process,
                              median of 3): rendering one compute node's highstate, local minion
    render_ratio_<N>          render_s_<N> / render_s (target for 4096: <= 2)
    validations_per_highstate how many times one show_highstate of the example validated the pillar
                              (DEBUG lines "hpc: validated the pillar" of logger hpc_context)

The grown pillar: compute nodes ``labcn[1-2]`` become ``labcn[1-N]`` everywhere the example names
them (nodes, policy_routing.hosts, node.mounts); their ib addresses start at 10.13.1.1 (ib is a
/16), and the admin network is widened from /24 to /16 so that their admin addresses (from
10.11.1.1) and MACs (from 52:54:00:0d:00:01) fit next to the other hosts'. Every other section is
the example's. Every run must succeed (check_pillar exits 0, the highstate renders). Each command
runs once untimed, then the sizes take turns, round after round, so that the machine's noise
falls on every size alike.

    bench/scale.py [--sizes 1024,4096] [--runs 3]

Run from the checkout with its venv (``make bench-scale [BENCH_SIZES=...]``); needs no lab. The
local minions live in a temporary directory (config, cache, synced modules): nothing is written
to the checkout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "pillar"
NODE = "labcn1"
VALIDATED = "hpc: validated the pillar"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _replace(text: str, old: str, new: str, path: Path) -> str:
    if old not in text:
        raise SystemExit(f"bench/scale.py: {old!r} not in {path}: the example pillar changed, update the generator")
    return text.replace(old, new)


def grow_pillar(n: int, dest: Path) -> Path:
    """A copy of the example pillar with N compute nodes, in dest; returns dest."""
    shutil.copytree(EXAMPLE, dest)
    cluster = dest / "cluster.sls"
    text = cluster.read_text()
    text = _replace(text, "cidr: 10.11.0.0/24", "cidr: 10.11.0.0/16", cluster)
    text = _replace(text, "admin: {name: eth0, ip: 10.11.0.41, mac: '52:54:00:0b:00:41'}",
                    "admin: {name: eth0, ip: 10.11.1.1, mac: '52:54:00:0d:00:01'}", cluster)
    cluster.write_text(text)
    for sls in sorted(dest.rglob("*.sls")):
        text = sls.read_text()
        if "labcn[1-2]" in text:
            sls.write_text(text.replace("labcn[1-2]", f"labcn[1-{n}]"))
    return dest


def wall(cmd: list[str], cwd: Path, check: Callable[[subprocess.CompletedProcess], None]) -> float:
    """Wall time of one whole process; ``check(proc)`` raises if the run went wrong."""
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=3600)
    took = time.monotonic() - t0
    check(proc)
    return took


def interleaved(commands: dict[str, tuple[list[str], Path, Callable]], runs: int) -> dict[str, float]:
    """Median wall time of each command: one untimed run each first, then ``runs`` rounds of one run
    each, so that a noisy moment of the machine falls on every size alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd, cwd, check in commands.values():
        wall(cmd, cwd, check)
    for r in range(runs):
        for name, (cmd, cwd, check) in commands.items():
            times[name].append(wall(cmd, cwd, check))
            log(f"  round {r + 1}/{runs}: {name}={times[name][-1]:.2f}")
    return {name: statistics.median(t) for name, t in times.items()}


def check_pillar_cmd(pillar: Path) -> tuple[list[str], Path, Callable]:
    def valid(proc: subprocess.CompletedProcess) -> None:
        if proc.returncode != 0:
            raise SystemExit(f"bench/scale.py: check_pillar.py {pillar} exited {proc.returncode}:\n{proc.stderr}")

    return [sys.executable, str(ROOT / "tools" / "check_pillar.py"), str(pillar)], ROOT, valid


class LocalMinion:
    """A masterless minion posing as NODE: etc/minion.in with a private root, this checkout's trees and
    ``pillar`` as its pillar_roots (as `make config` + `make preview` do, nothing written to the checkout)."""

    def __init__(self, pillar: Path, workdir: Path) -> None:
        self.dir = workdir
        (workdir / "etc").mkdir(parents=True)
        text = (ROOT / "etc" / "minion.in").read_text()
        text = _replace(text, "root_dir: @ROOT@/.salt", f"root_dir: {workdir / 'root'}", ROOT / "etc" / "minion.in")
        text = text.replace("@ROOT@", str(ROOT)).replace("@PILLAR@", str(pillar))
        (workdir / "etc" / "minion").write_text(text)

    def cmd(self, *args: str) -> list[str]:
        return [str(VENV_BIN / "salt-call"), "--local", "--config-dir", str(self.dir / "etc"), "--id", NODE, *args]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        # cwd: not the checkout, whose Saltfile points salt-call at .salt/etc
        return subprocess.run(self.cmd(*args), cwd=self.dir, capture_output=True, text=True, timeout=3600)

    def sync(self) -> None:
        proc = self.run("saltutil.sync_all")
        if proc.returncode != 0:
            raise SystemExit(f"bench/scale.py: saltutil.sync_all failed:\n{proc.stdout}{proc.stderr}")

    def render_cmd(self) -> tuple[list[str], Path, Callable]:
        def rendered(proc: subprocess.CompletedProcess) -> None:
            if proc.returncode != 0:
                raise SystemExit(f"bench/scale.py: show_highstate of {NODE} exited {proc.returncode}:\n"
                                 f"{proc.stdout[-4000:]}{proc.stderr[-4000:]}")

        return self.cmd("--out=quiet", "state.show_highstate"), self.dir, rendered

    def validations(self) -> int:
        """One show_highstate at DEBUG level: the lines saying the pillar was validated (and that it rendered)."""
        proc = self.run("-l", "debug", "--out=json", "state.show_highstate")
        try:
            states = json.loads(proc.stdout)["local"]
        except (ValueError, KeyError, TypeError):
            states = None
        if proc.returncode != 0 or not isinstance(states, dict) or not states:
            raise SystemExit(f"bench/scale.py: show_highstate of {NODE} rendered no states:\n{proc.stdout[-4000:]}")
        return sum(line.count(VALIDATED) for line in (proc.stdout + proc.stderr).splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,4096", help="compute node counts, comma-separated (default 1024,4096)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measure, the median is printed (default 3)")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",") if n.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        base = Path(tmp)
        suffix = {None: ""} | {n: f"_{n}" for n in sizes}
        pillars: dict[int | None, Path] = {None: EXAMPLE}
        for n in sizes:
            pillars[n] = grow_pillar(n, base / f"pillar-{n}")

        log(f"check_pillar.py on the example and on {args.sizes} compute nodes ({args.runs} rounds)")
        checks = interleaved({f"check_pillar_s{suffix[n]}": check_pillar_cmd(p) for n, p in pillars.items()},
                             args.runs)
        for name, value in checks.items():
            print(f"{name}={value:.2f}", flush=True)
        for n in sizes:
            print(f"check_pillar_ratio_{n}={checks[f'check_pillar_s_{n}'] / checks['check_pillar_s']:.2f}",
                  flush=True)

        minions = {n: LocalMinion(p, base / f"minion{suffix[n] or '-example'}") for n, p in pillars.items()}
        log(f"local minions as {NODE}: saltutil.sync_all, then one show_highstate at DEBUG level each")
        validations = {}
        for n, minion in minions.items():
            minion.sync()
            validations[n] = minion.validations()  # also checks that the highstate renders
        log(f"salt-call --local --id {NODE} state.show_highstate ({args.runs} rounds)")
        renders = interleaved({f"render_s{suffix[n]}": m.render_cmd() for n, m in minions.items()}, args.runs)
        for name, value in renders.items():
            print(f"{name}={value:.2f}", flush=True)
        for n in sizes:
            print(f"render_ratio_{n}={renders[f'render_s_{n}'] / renders['render_s']:.2f}", flush=True)
        print(f"validations_per_highstate={validations[None]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
