#!/usr/bin/env python3
"""Bench how fast the LVS directors take a dead frontend out. Not a test: ``name=value`` lines.

Per run, on labfe2 (a real server of the lab's SSH VIP): its sshd is SIGKILLed (``refused``:
the kernel answers RST), or an nft rule in labfe2 drops everything to port 22 (``silent``: the
probes time out). The time from that moment until the master has received, from **both**
directors, the signed ``hpc/lvs/health/<address>/down`` event their hpc_lvs_health beacon fires
*after* setting the weight to 0 in its own table: an upper bound of the time both tables said 0
(an event's trip from a TCG director to the master is part of it). The first and last runs also
read both tables (``ipvsadm -S -n``) to check the event told the truth. Then sshd comes back (or
the rule goes) and the run waits for both directors' ``up``.

    bench/lvs_detect.py [--prefix P] [--runs N] [--modes refused,silent]

Prints detect_{median,p95,max}_s (refused) and detect_silent_{median,p95,max}_s, and the runs
that never saw both events. Without ``--prefix`` it brings its own lab up with a highstate
everywhere, and takes it down at the end. Run as root.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import signal
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from policy_routing import cluster, log, on_lab, p95, paths  # noqa: E402

from hpclab import events  # noqa: E402
from hpclab.registry import LAB_ROOT  # noqa: E402

FRONTEND, ADDRESS = "labfe2", "10.12.0.22"
DIRECTORS = ("lablvs1", "lablvs2")
FULL = 100  # labfe2's weight in the example pillar
VIP = "10.12.0.10:22"


def _weights(lab: cluster.Lab) -> dict[str, int]:
    """labfe2's weight in the VIP's service, per director, from ipvsadm."""
    out = {}
    for director in DIRECTORS:
        rc, text, err = lab.exec(director, ["ipvsadm", "-S", "-n"], timeout=60)
        if rc != 0:
            raise RuntimeError(f"ipvsadm -S on {director}: {err.strip()}")
        line = next((w for w in text.splitlines() if f"-t {VIP} -r {ADDRESS}:22" in w), "")
        out[director] = int(line.split("-w ")[1].split()[0]) if "-w " in line else -1
    return out


def _both(bus: events.Watch, state: str, after: float) -> list[dict]:
    tag = f"hpc/lvs/health/{ADDRESS}/{state}"
    seen = bus.seen(lambda e: e["tag"] == tag and e["_seen"] > after)
    return [next(e for e in seen if e["data"].get("id") == d) for d in DIRECTORS
            if any(e["data"].get("id") == d for e in seen)]


def _break(lab: cluster.Lab, mode: str, table: str) -> float:
    """Break labfe2's sshd for the probes; the moment it was broken (monotonic)."""
    if mode == "refused":
        pids = lab.daemon_pids(FRONTEND, "sshd")
        started = time.monotonic()
        for pid in pids:  # root-ns PIDs of labfe2's own processes (never by name)
            with contextlib.suppress(ProcessLookupError):  # a probe's own sshd, gone meanwhile
                os.kill(pid, signal.SIGKILL)
        return started
    rules = (f"table inet {table} {{ chain input {{ type filter hook input priority -10; "
             "tcp dport 22 drop; }; }")
    started = time.monotonic()
    rc, _, err = lab.exec(FRONTEND, ["nft", "-f", "-"], stdin=rules)
    if rc != 0:
        raise RuntimeError(f"nft in {FRONTEND}: {err.strip()}")
    return started


def _mend(lab: cluster.Lab, mode: str, table: str) -> None:
    argv = ["service", "ssh", "start"] if mode == "refused" else ["nft", "delete", "table", "inet", table]
    rc, _, err = lab.exec(FRONTEND, argv)
    if rc != 0:
        raise RuntimeError(f"{' '.join(argv)} in {FRONTEND}: {err.strip()}")


def bench_mode(lab: cluster.Lab, bus: events.Watch, mode: str, runs: int) -> list[float]:
    table = f"{lab.prefix}_probe_drop"  # the run's prefix: removed by name if a run fails
    times, missed = [], 0
    for i in range(runs):
        time.sleep(1 + random.random())  # the fault lands anywhere in the probes' period
        broken = _break(lab, mode, table)
        try:
            ok = paths.wait_until(lambda b=broken: len(_both(bus, "down", b)) == 2, 10, step=0.02)
            if ok:
                took = max(e["_seen"] for e in _both(bus, "down", broken)) - broken
                times.append(took)
                log(f"{mode} run {i}: both directors down after {took:.3f} s")
            else:
                missed += 1
                log(f"{mode} run {i}: only {[e['data']['id'] for e in _both(bus, 'down', broken)]} within 10 s")
            if i in (0, runs - 1):
                weights = _weights(lab)
                if any(w != 0 for w in weights.values()):
                    raise RuntimeError(f"{mode} run {i}: the events said down, the tables say {weights}")
        finally:
            mended = time.monotonic()
            _mend(lab, mode, table)
        if not paths.wait_until(lambda m=mended: len(_both(bus, "up", m)) == 2, 20, step=0.05):
            raise RuntimeError(f"{mode} run {i}: not back up on both directors within 20 s")
    name = "detect" if mode == "refused" else "detect_silent"
    if times:
        print(f"{name}_median_s={statistics.median(times):.3f}")
        print(f"{name}_p95_s={p95(times):.3f}")
        print(f"{name}_max_s={max(times):.3f}")
    print(f"{name}_missed={missed}")
    print(f"{name}_runs={runs}")
    return times


def own_lab() -> tuple[cluster.Lab, str]:
    prefix = "b" + secrets.token_hex(2)
    while (LAB_ROOT / prefix).exists():
        prefix = "b" + secrets.token_hex(2)
    lab = cluster.up(prefix, progress=log, set_current=False)
    data = lab.salt_json(["*", "state.apply", "-t", "600"], timeout=900)
    bad = sorted(m for m, states in data.items()
                 if not isinstance(states, dict) or any(s["result"] is False for s in states.values()))
    if bad:
        raise RuntimeError(f"highstate failed on {', '.join(bad)}")
    return lab, prefix


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--prefix", help="use this lab (up, highstate applied) instead of a new one")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--modes", default="refused,silent")
    args = ap.parse_args()

    def body(lab: cluster.Lab) -> None:
        if _weights(lab) != dict.fromkeys(DIRECTORS, FULL):
            raise RuntimeError(f"labfe2 is not in both tables at weight {FULL}: {_weights(lab)}")
        with events.watch(lab, "hpc/lvs/health/", seconds=3600) as bus:
            for mode in args.modes.split(","):
                bench_mode(lab, bus, mode, args.runs)

    return on_lab(args.prefix, own_lab, body)


if __name__ == "__main__":
    sys.exit(main())
