#!/usr/bin/env python3
"""Bench the SSH VIP's failover between the LVS directors. Not a test: ``name=value`` lines.

Per run: five SSH sessions are open through the VIP (each prints a counter every 0.2 s for 24 s,
from its own client address), and the client probes the VIP: a TCP connection that must say
``SSH-`` within 0.5 s, a new login's first step. Then lablvs1's WAN link goes down (keepalived on
lablvs2 takes the VIP), and 8 s later comes back (lablvs1 preempts: the failback).

Two probers run side by side. One starts a probe every 50 ms whatever the others do: a login
tried at any moment, so a gap between two good probes is time the VIP did not answer. The
other (``serial``, what this bench measured before 2026-12-03) waits for each probe before the
next: one that started against the old director blocks it for its 0.5 s timeout, which the gap
then includes.

    vip_failover_gap_s      the longest time without a good probe, from the link going down
                            until the failback starts (median, p95, max over the runs)
    vip_failback_gap_s      the same from the link coming back until 6 s later
    vip_failover_gap_serial_s, vip_failback_gap_serial_s   the same, from the serial prober
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

# Runs in the client for SECONDS; prints each good probe's start time. "every": a probe starts
# every 50 ms, each in its own thread; "serial": each waits for the one before.
PROBER = r"""
import socket, sys, threading, time
vip, seconds, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
def probe(started):
    try:
        with socket.create_connection((vip, 22), timeout=0.5) as s:
            s.settimeout(max(0.01, 0.5 - (time.time() - started)))
            if s.recv(64).startswith(b"SSH-"):
                with lock:
                    print(f"{started:.3f}", flush=True)
    except OSError:
        pass
end = time.time() + seconds
while time.time() < end:
    started = time.time()
    if mode == "every":
        threading.Thread(target=probe, args=(started,), daemon=True).start()
    else:
        probe(started)
    time.sleep(max(0.0, 0.05 - (time.time() - started)))
time.sleep(0.6)
"""
PROBERS = ("every", "serial")


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


def one_run(lab: cluster.Lab, i: int) -> tuple[dict[str, tuple[float, float]], int]:
    if not paths.wait_until(lambda: logins.vip_holders(lab) == ["lablvs1"], 60):
        raise RuntimeError(f"run {i}: the VIP is on {logins.vip_holders(lab)}, not lablvs1 alone")
    sessions = [logins.open_session(lab, f"fo{i}-{n}", TICKS, EVERY, source=s) for n, s in enumerate(SOURCES)]
    seconds = 3 + DOWN_S + AFTER_S + 4
    probe_out = {mode: f"/tmp/{lab.prefix}-vipprobe-{mode}-{i}.out" for mode in PROBERS}
    for mode, out in probe_out.items():
        script = f"python3 -c {shlex.quote(PROBER)} {logins.VIP} {seconds} {mode} > {out} 2>&1 &"
        assert lab.exec(logins.CLIENT, ["sh", "-c", script])[0] == 0
    time.sleep(3)
    down = _link(lab, up=False)
    try:
        time.sleep(DOWN_S)
    finally:
        up = _link(lab, up=True)
    time.sleep(AFTER_S + 5)
    gaps = {}
    for mode, out in probe_out.items():
        stamps = sorted(float(x) for x in lab.exec(logins.CLIENT, ["cat", out])[1].split())
        lab.exec(logins.CLIENT, ["rm", "-f", out])
        gaps[mode] = _longest_gap(stamps, down, up), _longest_gap(stamps, up, up + AFTER_S)
    paths.wait_until(lambda: all(any(x.startswith("rc=") for x in logins.session_result(lab, s)) for s in sessions),
                     TICKS * EVERY + 30)
    expected = [str(n) for n in range(1, TICKS + 1)] + ["rc=0"]
    kept = sum(logins.session_result(lab, s) == expected for s in sessions)
    for s in sessions:
        lab.exec(logins.CLIENT, ["rm", "-f", s])
    (over, back), (s_over, s_back) = gaps["every"], gaps["serial"]
    log(f"run {i}: failover gap {over:.3f} s (serial prober {s_over:.3f}), failback gap {back:.3f} s "
        f"(serial {s_back:.3f}), sessions kept {kept}/{len(sessions)}")
    return gaps, kept


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--prefix", help="use this lab (up, highstate applied) instead of a new one")
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()

    def body(lab: cluster.Lab) -> None:
        gaps, kept = {mode: ([], []) for mode in PROBERS}, 0
        with logins.sources(lab, SOURCES[0], len(SOURCES)):
            for i in range(args.runs):
                run_gaps, k = one_run(lab, i)
                for mode, (over, back) in run_gaps.items():
                    gaps[mode][0].append(over)
                    gaps[mode][1].append(back)
                kept += k
        for mode, (failovers, failbacks) in gaps.items():
            suffix = "" if mode == "every" else f"_{mode}"
            for name, values in ((f"vip_failover_gap{suffix}", failovers), (f"vip_failback_gap{suffix}", failbacks)):
                print(f"{name}_median_s={statistics.median(values):.3f}")
                print(f"{name}_p95_s={p95(values):.3f}")
                print(f"{name}_max_s={max(values):.3f}")
        print(f"sessions_kept_ratio={kept / (len(SOURCES) * args.runs):.3f}")
        print(f"vip_failover_runs={args.runs}")

    return on_lab(args.prefix, own_lab, body)


if __name__ == "__main__":
    sys.exit(main())
