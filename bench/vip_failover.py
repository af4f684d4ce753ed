#!/usr/bin/env python3
"""Bench the SSH VIP's failover between the LVS directors. Not a test: ``name=value`` lines.

Per run: five SSH sessions are open through the VIP (each prints a counter every 0.2 s for 24 s,
from its own client address), and the client probes the VIP every 50 ms (a TCP connection that
must say ``SSH-`` within 0.5 s: a new login's first step). Then lablvs1's WAN link goes down
(keepalived on lablvs2 takes the VIP), and 8 s later comes back (lablvs1 preempts: the failback).

    vip_failover_gap_s      the longest time without a good probe, from the link going down
                            until the failback starts (median, p95, max over the runs)
    vip_failback_gap_s      the same from the link coming back until 6 s later
    sessions_kept_ratio     sessions that printed every line and ended well / sessions opened

    bench/vip_failover.py [--prefix P] [--runs N]

Without ``--prefix`` it brings its own lab up with a highstate everywhere (bench/lvs_detect.py),
and takes it down at the end. Run as root.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lvs_detect import own_lab  # noqa: E402
from policy_routing import cluster, log, on_lab, p95, paths  # noqa: E402

from hpclab import logins  # noqa: E402

SOURCES = [f"10.12.0.24{i}" for i in range(5)]  # the sessions' client addresses
TICKS, EVERY = 120, 0.2  # 24 s per session
DOWN_S, AFTER_S = 8.0, 6.0

# Runs in the client: probes the VIP every 50 ms for SECONDS; prints each good probe's time.
PROBER = r"""
import socket, sys, time
vip, seconds = sys.argv[1], float(sys.argv[2])
end = time.time() + seconds
while time.time() < end:
    started = time.time()
    try:
        with socket.create_connection((vip, 22), timeout=0.5) as s:
            s.settimeout(max(0.01, 0.5 - (time.time() - started)))
            if s.recv(64).startswith(b"SSH-"):
                print(f"{started:.3f}", flush=True)
    except OSError:
        pass
    time.sleep(max(0.0, 0.05 - (time.time() - started)))
"""


def _link(lab: cluster.Lab, up: bool) -> float:
    """lablvs1's WAN link down or up; the wall-clock time (the client's clock: one machine) before."""
    when = time.time()
    rc, _, err = lab.exec("lablvs1", ["ip", "link", "set", "eth1", "up" if up else "down"])
    if rc != 0:
        raise RuntimeError(f"lablvs1 eth1: {err.strip()}")
    return when


def _longest_gap(stamps: list[float], start: float, end: float) -> float:
    points = [start] + [t for t in stamps if start < t < end] + [end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


def one_run(lab: cluster.Lab, i: int) -> tuple[float, float, int]:
    if not paths.wait_until(lambda: logins.vip_holders(lab) == ["lablvs1"], 60):
        raise RuntimeError(f"run {i}: the VIP is on {logins.vip_holders(lab)}, not lablvs1 alone")
    sessions = [logins.open_session(lab, f"fo{i}-{n}", TICKS, EVERY, source=s) for n, s in enumerate(SOURCES)]
    probe_out = f"/tmp/{lab.prefix}-vipprobe-{i}.out"
    seconds = 3 + DOWN_S + AFTER_S + 4
    script = f"python3 -c {shlex.quote(PROBER)} {logins.VIP} {seconds} > {probe_out} 2>&1 &"
    assert lab.exec(logins.CLIENT, ["sh", "-c", script])[0] == 0
    time.sleep(3)
    down = _link(lab, up=False)
    try:
        time.sleep(DOWN_S)
    finally:
        up = _link(lab, up=True)
    time.sleep(AFTER_S + 5)
    stamps = [float(x) for x in lab.exec(logins.CLIENT, ["cat", probe_out])[1].split()]
    lab.exec(logins.CLIENT, ["rm", "-f", probe_out])
    failover, failback = _longest_gap(stamps, down, up), _longest_gap(stamps, up, up + AFTER_S)
    paths.wait_until(lambda: all(any(x.startswith("rc=") for x in logins.session_result(lab, s)) for s in sessions),
                     TICKS * EVERY + 30)
    expected = [str(n) for n in range(1, TICKS + 1)] + ["rc=0"]
    kept = sum(logins.session_result(lab, s) == expected for s in sessions)
    for s in sessions:
        lab.exec(logins.CLIENT, ["rm", "-f", s])
    log(f"run {i}: failover gap {failover:.3f} s, failback gap {failback:.3f} s, sessions kept {kept}/{len(sessions)}")
    return failover, failback, kept


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--prefix", help="use this lab (up, highstate applied) instead of a new one")
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()

    def body(lab: cluster.Lab) -> None:
        failovers, failbacks, kept = [], [], 0
        with logins.sources(lab, SOURCES[0], len(SOURCES)):
            for i in range(args.runs):
                over, back, k = one_run(lab, i)
                failovers.append(over)
                failbacks.append(back)
                kept += k
        for name, values in (("vip_failover_gap", failovers), ("vip_failback_gap", failbacks)):
            print(f"{name}_median_s={statistics.median(values):.3f}")
            print(f"{name}_p95_s={p95(values):.3f}")
            print(f"{name}_max_s={max(values):.3f}")
        print(f"sessions_kept_ratio={kept / (len(SOURCES) * args.runs):.3f}")
        print(f"vip_failover_runs={args.runs}")

    return on_lab(args.prefix, own_lab, body)


if __name__ == "__main__":
    sys.exit(main())
