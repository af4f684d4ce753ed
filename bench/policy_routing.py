#!/usr/bin/env python3
"""Bench per-user policy routing in the lab: healing after IB flaps, NAT failover gap, leaks.

Not a test. Prints ``name=value`` lines (progress goes to stderr):

    heal      50 admin flaps of labcn1's ib0; for each, the time from link up until table 201's
              default route is back in the kernel (the beacon's local heal does it):
              heal_local_{median,p95,max}_s; until the master has the reactor's heal's
              hpc/net/routes/restored: heal_confirmed_{median,p95,max}_s; then 50 more with
              labcn1 cut off from the admin network (no master): heal_nomaster_{median,p95,max}_s
    failover  10 runs: a long-lived TCP flow of a chosen user, probed every 10 ms (one line out,
              its echo back) while labnat1, the master NAT router, loses ib0's carrier; the
              longest wait for an echo in each run: nat_failover_gap_median_s, _p95_s, _max_s,
              nat_failover_flows_broken
    leak      1,000 connections of chosen users and 1,000 of other users (half of each closed by
              the client, half by the server), packets counted where they arrive from ib:
              leak_chosen_via_default_pkts, leak_other_via_nat_pkts (and the packets on the
              expected paths, to show the counters counted)

    bench/policy_routing.py heal|failover|leak [--prefix P] [--runs N]

Each first waits until the directors' VMs use less than half a core each (``vms_settle_s``).
Without ``--prefix`` it brings its own lab up (random prefix), applies the states to the NAT
routers and compute nodes, and takes the lab down at the end; with it, it uses that lab as it is
(the states applied, e.g. after `lab up` and `lab salt '*' state.apply`). Run as root.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for sub in ("lab", "_utils"):
    sys.path.insert(0, str(ROOT / sub))

from hpclab import cluster, events, paths  # noqa: E402
from hpclab.registry import LAB_ROOT  # noqa: E402

NODE = "labcn1"
CHOSEN, OTHER = ("aliprod", "alicesup"), ("bob", "root")
STATE_HOSTS = "labnat1,labnat2,labcn1,labcn2"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _flaps(lab: cluster.Lab, runs: int) -> dict:
    """flapbench.py in labcn1: ``runs`` admin flaps of ib0, 1 s apart, timed in the node."""
    script = ROOT / "lab" / "hpclab" / "flapbench.py"
    try:
        rc, out, err = lab.exec(NODE, ["/usr/bin/python3", "-I", str(script), "ib0", "201", str(runs), "1.0", "10"],
                                timeout=runs * 15 + 60)
    finally:
        lab.restore_default_route(NODE)  # the flaps took the main table's too (not ours to heal)
    if rc != 0:
        raise RuntimeError(f"flapbench: {err.strip()}")
    return json.loads(out)


def _stamp(event: dict) -> float:
    """When the master received an event (its ``_stamp``: UTC, ISO 8601)."""
    when = datetime.datetime.fromisoformat(event["data"]["_stamp"])
    return when.replace(tzinfo=datetime.UTC).timestamp()


def _confirmations(ups: list[float], seen: list[dict]) -> list[float | None]:
    """Per link up, the time until the master saw the reactor's heal report ``restored``."""
    stamps = sorted(_stamp(e) for e in seen if e["tag"] == "hpc/net/routes/restored"
                    and e["data"]["data"].get("reason") == "hpc/net/link/ib0/up")
    out = []
    for i, up in enumerate(ups):
        until = ups[i + 1] if i + 1 < len(ups) else math.inf
        out.append(next((t - up for t in stamps if up < t < until), None))
    return out


def _report(name: str, times: list[float], timeouts: int) -> None:
    if times:
        print(f"{name}_median_s={statistics.median(times):.3f}")
        print(f"{name}_p95_s={p95(times):.3f}")
        print(f"{name}_max_s={max(times):.3f}")
    print(f"{name}_timeouts={timeouts}")


def bench_heal(lab: cluster.Lab, runs: int) -> None:
    """heal_local: link up -> table 201's default back in labcn1's kernel (the beacon's local heal);
    heal_confirmed: link up -> the master has hpc/net/routes/restored from the reactor's heal;
    heal_nomaster: heal_local with labcn1 cut off from the admin network (no master)."""
    with events.watch(lab, "hpc/net/routes/", seconds=runs * 15 + 120) as bus:
        got = _flaps(lab, runs)
        time.sleep(3)  # the last flap's confirmation
        confirmed = _confirmations(got["ups"], bus.seen())
    log(f"local heal times (s): {got['heal_s']}")
    log(f"confirmation times (s): {[round(c, 3) if c else c for c in confirmed]}")
    _report("heal_local", got["heal_s"], got["timeouts"])
    _report("heal_confirmed", [c for c in confirmed if c is not None], confirmed.count(None))
    admin = next(i.name for i in lab.node(NODE).ifaces if i.network == "admin")
    lab.partition(NODE, ifaces=[admin])
    try:
        cut = _flaps(lab, runs)
    finally:
        lab.partition(NODE, up=True, ifaces=[admin])
    log(f"local heal times without the master (s): {cut['heal_s']}")
    _report("heal_nomaster", cut["heal_s"], cut["timeouts"])
    print(f"heal_flaps={runs}")


def bench_failover(lab: cluster.Lab, runs: int) -> None:
    gaps, broken = [], 0
    for i in range(runs):
        if not paths.wait_until(lambda: paths.vip_holders(lab) == ["labnat1"], 15):
            raise RuntimeError(f"run {i}: the NAT VIP is on {paths.vip_holders(lab)}, not on labnat1 alone")
        time.sleep(3)  # after the previous run's failback: conntrackd and ARP caches settle first
        result = paths.stream_as(lab, NODE, CHOSEN[0], paths.INTERNET, paths.CHOSEN_PORT, seconds=5, interval=0.01)
        time.sleep(2)
        lab.partition("labnat1", ifaces=["ib0"])
        try:
            done = paths.wait_until(lambda r=result: paths.stream_result(lab, NODE, r) is not None, 30)
        finally:
            lab.partition("labnat1", up=True, ifaces=["ib0"])
        got = paths.stream_result(lab, NODE, result) if done else None
        if not got or got["error"] or got["echoed"] != got["sent"]:
            broken += 1
            log(f"run {i}: flow broken: {got}")
            continue
        gaps.append(got["max_gap_s"])
        log(f"run {i}: longest gap {got['max_gap_s']:.3f} s ({got['echoed']} probes)")
    if gaps:
        print(f"nat_failover_gap_median_s={statistics.median(gaps):.3f}")
        print(f"nat_failover_gap_p95_s={p95(gaps):.3f}")
        print(f"nat_failover_gap_max_s={max(gaps):.3f}")
    print(f"nat_failover_runs={runs}")
    print(f"nat_failover_flows_broken={broken}")


def bench_leak(lab: cluster.Lab, runs: int) -> None:
    counts, results = paths.leak_experiment(lab, NODE, CHOSEN, OTHER, runs // 2)
    for got in results:
        log(f"{got}")
    if failed := [got for got in results if got["failed"]]:
        raise RuntimeError(f"connections failed: {failed}")
    print(f"leak_connections_per_class={2 * (runs // 2)}")
    print(f"leak_chosen_via_default_pkts={counts.chosen_via_default}")
    print(f"leak_other_via_nat_pkts={counts.other_via_nat}")
    print(f"chosen_via_nat_pkts={counts.chosen_via_nat}")
    print(f"other_via_default_pkts={counts.other_via_default}")


BENCHES = {"heal": (bench_heal, 50), "failover": (bench_failover, 10), "leak": (bench_leak, 1000)}


def own_lab() -> tuple[cluster.Lab, str]:
    prefix = "b" + secrets.token_hex(2)
    while (LAB_ROOT / prefix).exists():
        prefix = "b" + secrets.token_hex(2)
    lab = cluster.up(prefix, progress=log, set_current=False)
    data = lab.salt_json(["-L", STATE_HOSTS, "state.apply", "-t", "300"], timeout=600)
    bad = [m for m in STATE_HOSTS.split(",")
           if not isinstance(data.get(m), dict) or any(s["result"] is False for s in data[m].values())]
    if bad:
        raise RuntimeError(f"highstate failed on {', '.join(bad)}")
    return lab, prefix


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("bench", choices=sorted(BENCHES))
    ap.add_argument("--prefix", help="use this lab (up, states applied) instead of a new one")
    ap.add_argument("--runs", type=int, help="flaps / failovers / connections per class")
    args = ap.parse_args()
    func, default_runs = BENCHES[args.bench]

    def body(lab: cluster.Lab) -> None:
        paths.start_server(lab, "labinet1", (paths.CHOSEN_PORT,))
        paths.start_server(lab, "labfw1", (paths.OTHER_PORT,))
        func(lab, args.runs or default_runs)

    return on_lab(args.prefix, own_lab, body)


def on_lab(prefix: str | None, make: Callable[[], tuple[cluster.Lab, str]], body: Callable[[cluster.Lab], None]) -> int:
    """Run ``body`` on lab ``prefix`` as it is, or on one ``make`` brings up (and this takes down,
    whatever happens). Measures once the directors' VMs are idle: their emulated CPUs share this
    machine's cores with the routers and nodes (real ones would not); says how long that took."""
    own = None
    try:
        if prefix:
            lab = cluster.Lab.load(prefix)
        else:
            lab, own = make()
        print(f"vms_settle_s={lab.wait_vms_idle(progress=log):.0f}")
        body(lab)
        return 0
    finally:
        if own:
            cluster.down(own, progress=log)


if __name__ == "__main__":
    sys.exit(main())
