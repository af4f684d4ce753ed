#!/usr/bin/env python3
"""Bench the faults the project answers by itself, in the lab. Not a test: ``name=value`` lines.

    keepalived  SIGKILL keepalived (parent and VRRP child) on labnat1, the master NAT router,
                ``--runs`` times (default 10), while a chosen user's long-lived flow from labcn1
                to the internet sends a probe every 10 ms. Per run: the time from the kill until
                exactly one router holds the gateway VIP and keepalived runs on both again
                (the hpc_daemons beacon -> master reactor -> keepalived.revive path does it):
                daemon_back_{median,p95,max}_s; the longest wait for a probe's echo meanwhile:
                fault_flow_gap_{median,p95,max}_s, fault_flows_broken.

    bench/faults.py keepalived [--prefix P] [--runs N]

Without ``--prefix`` it brings its own lab up and applies the states (bench/policy_routing.py's
own_lab), and takes it down at the end. Run as root.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from policy_routing import CHOSEN, NODE, cluster, log, on_lab, own_lab, p95, paths  # noqa: E402

ROUTERS = ("labnat1", "labnat2")


def _both_running(lab: cluster.Lab) -> bool:
    return all(lab.daemon_pids(r, "keepalived") for r in ROUTERS)


def _settled(lab: cluster.Lab) -> bool:
    """The state before a run: labnat1 holds the VIP alone, keepalived runs on both."""
    return paths.vip_holders(lab) == ["labnat1"] and _both_running(lab)


def bench_keepalived(lab: cluster.Lab, runs: int) -> None:
    back, gaps, broken, never = [], [], 0, 0
    for i in range(runs):
        if not paths.wait_until(lambda: _settled(lab), 60):
            raise RuntimeError(f"run {i}: not settled: VIP on {paths.vip_holders(lab)}, "
                               f"keepalived on {[r for r in ROUTERS if lab.daemon_pids(r, 'keepalived')]}")
        time.sleep(3)  # conntrackd and ARP caches settle after the previous run's failback
        result = paths.stream_as(lab, NODE, CHOSEN[0], paths.INTERNET, paths.CHOSEN_PORT, seconds=15, interval=0.01)
        time.sleep(2)
        killed = time.monotonic()
        lab.kill("labnat1", "keepalived")
        ok = paths.wait_until(lambda: len(paths.vip_holders(lab)) == 1 and _both_running(lab), 30, step=0.05)
        took = time.monotonic() - killed
        if ok:
            back.append(took)
        else:
            never += 1
        paths.wait_until(lambda r=result: paths.stream_result(lab, NODE, r) is not None, 40)
        got = paths.stream_result(lab, NODE, result)
        if not got or got["error"] or got["echoed"] != got["sent"]:
            broken += 1
            log(f"run {i}: back after {took:.2f} s; flow broken: {got}")
            continue
        gaps.append(got["max_gap_s"])
        log(f"run {i}: back after {took:.2f} s, longest flow gap {got['max_gap_s']:.3f} s")
    for name, values in (("daemon_back", back), ("fault_flow_gap", gaps)):
        if values:
            print(f"{name}_median_s={statistics.median(values):.3f}")
            print(f"{name}_p95_s={p95(values):.3f}")
            print(f"{name}_max_s={max(values):.3f}")
    print(f"daemon_back_timeouts={never}")
    print(f"fault_runs={runs}")
    print(f"fault_flows_broken={broken}")


BENCHES = {"keepalived": (bench_keepalived, 10)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("bench", choices=sorted(BENCHES))
    ap.add_argument("--prefix", help="use this lab (up, states applied) instead of a new one")
    ap.add_argument("--runs", type=int)
    args = ap.parse_args()
    func, default_runs = BENCHES[args.bench]

    def body(lab: cluster.Lab) -> None:
        paths.start_server(lab, "labinet1", (paths.CHOSEN_PORT,))
        func(lab, args.runs or default_runs)

    return on_lab(args.prefix, own_lab, body)


if __name__ == "__main__":
    sys.exit(main())
