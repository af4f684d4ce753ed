#!/usr/bin/env python3
"""Bench the IPVS handle against ``ipvsadm -R`` on a big table, in a director VM. Not a test:
``name=value`` lines.

A table of ``--services`` virtual services (default 1000) with ``--reals`` real servers each
(default 10), in a throwaway network namespace of the VM (real IPVS, Debian's kernel, TCG):

    restore_s       ``ipvsadm -C`` then ``ipvsadm -R`` of the table's text (the reference)
    full_sync_s     from an empty table: read, plan, apply, read back and plan again (what
                    ``ipvs.apply`` does on a director that rebooted)
    noop_sync_s     the same on a table already in sync (read and plan: what the minute's
                    re-apply costs)
    one_change_s    one real server's weight changed: read, plan, apply the one edit, read back
    full_sync_ratio, noop_sync_ratio   each over restore_s of the same round

Each is measured ``--rounds`` times (default 3), alternating with ipvsadm; medians are printed.

    bench/ipvs_sync.py [--prefix P] [--services N] [--reals M] [--rounds R]

Without ``--prefix`` it boots its own VM (about 30 s) and removes it at the end; with it, it
runs in lablvs1 of that lab. Run as root.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "_utils"), str(ROOT / "lab")]


def table_text(services: int, reals: int) -> str:
    lines = []
    for i in range(services):
        vip = f"10.{100 + i // 65536}.{(i // 256) % 256}.{i % 256}:22"
        lines.append(f"-A -t {vip} -s wlc -p 600")
        lines += [f"-a -t {vip} -r 10.200.{j}.1:22 -g -w 1" for j in range(reals)]
    return "\n".join(lines) + "\n"


def _sync(want) -> float:
    from hpc_ipvs import plan
    from hpc_ipvs_kernel import NetlinkIpvs, apply

    started = time.monotonic()
    handle = NetlinkIpvs()
    try:
        steps = plan(want, handle.read())
        if steps:
            assert apply(handle, steps) == []
            assert plan(want, handle.read()) == []
    finally:
        handle.close()
    return time.monotonic() - started


def _ipvsadm(*args: str, stdin: str | None = None) -> float:
    started = time.monotonic()
    subprocess.run(["ipvsadm", *args], input=stdin, text=True, check=True, capture_output=True)
    return time.monotonic() - started


def inner(services: int, reals: int, rounds: int) -> None:
    """Runs inside the VM's throwaway netns."""
    from hpc_ipvs import RealServer, Table, parse_rules

    text = table_text(services, reals)
    want = parse_rules(text)
    first = want.reals[0]
    edited = Table(want.services, (RealServer(first.service, first.address, first.port, first.forward, 5),
                                   *want.reals[1:]))
    restore, full, noop, one = [], [], [], []
    for _ in range(rounds):
        _ipvsadm("-C")
        restore.append(_ipvsadm("-R", stdin=text))
        _ipvsadm("-C")
        full.append(_sync(want))
        noop.append(_sync(want))
        one.append(_sync(edited))
        _sync(want)
    _ipvsadm("-C")
    med = {name: statistics.median(v) for name, v in
           (("restore_s", restore), ("full_sync_s", full), ("noop_sync_s", noop), ("one_change_s", one))}
    print(f"services={services}\nreal_servers={services * reals}")
    for name, value in med.items():
        print(f"{name}={value:.3f}")
    print(f"full_sync_ratio={statistics.median(f / r for f, r in zip(full, restore, strict=True)):.3f}")
    print(f"noop_sync_ratio={statistics.median(n / r for n, r in zip(noop, restore, strict=True)):.3f}")


def _inner_argv(args: argparse.Namespace) -> list[str]:
    script = (f"cd {ROOT} && ip link set lo up && .venv/bin/python bench/ipvs_sync.py inner "
              f"--services {args.services} --reals {args.reals} --rounds {args.rounds}")
    return ["unshare", "-n", "sh", "-c", script]


def outer(args: argparse.Namespace) -> int:
    if args.prefix:
        from hpclab import cluster

        rc, out, err = cluster.Lab.load(args.prefix).exec("lablvs1", _inner_argv(args), timeout=3600)
    else:
        from hpclab import vm as labvm
        from hpclab.registry import Run

        run = Run("b" + secrets.token_hex(2))
        try:
            vm = labvm.start_vm(run, "bench", [], hostname=f"{run.prefix}-director")
            labvm.wait_ready(vm, timeout=180)
            rc, out, err = labvm.vm_exec(vm, _inner_argv(args), timeout=3600)
        finally:
            labvm.teardown(run)
    sys.stdout.write(out)
    if rc != 0:
        sys.stderr.write(err)
    return rc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="outer", choices=["outer", "inner"])
    parser.add_argument("--prefix")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--reals", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "inner":
        inner(args.services, args.reals, args.rounds)
        return 0
    return outer(args)


if __name__ == "__main__":
    sys.exit(main())
