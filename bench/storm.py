#!/usr/bin/env python3
"""Bench an IB storm in the lab: many compute nodes flap their IB links at the same moment.

Not a test. Prints ``name=value`` lines (progress on stderr). A lab grown to ``--nodes`` compute
nodes (default 30; namespace hosts, each with its own minion: ``lab up --compute N``), policy
routing applied on all of them; then ``--runs`` storms (default 10), each once the previous one
is over and the lab quiet: every node runs lab/hpclab/flapbench.py with the same start time, so
all flap ib0 within a few milliseconds.

    storm_heal_{median,p95,max}_s       per storm, until the last node's table 201 default is
                                        back in its kernel (the local heal in each beacon)
    storm_confirmed_{median,p95,max}_s  per storm, until the master has every node's
                                        hpc/net/routes/restored from the reactor's heal
    storm_master_jobs_per_event         policy_routing.heal jobs the master published per
                                        link-up event it received (1 without batching)

    bench/storm.py [--prefix P] [--nodes N] [--runs R]

Without ``--prefix`` it brings its own lab up (random prefix), applies the states, and takes it
down at the end; with it, it uses that lab (grown, states applied). Run as root.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from policy_routing import ROOT, _stamp, cluster, events, log, on_lab, p95  # noqa: E402

from hpclab.registry import LAB_ROOT  # noqa: E402

LEAD = 4.0  # seconds from starting flapbench in every node to the storm: all have started by then
CONFIRM_WAIT = 30.0  # a storm is over when every node's restored came, or after this
QUIET = 1.0  # then this long with nothing happening before the next storm
LINK_UP = "hpc/net/link/ib0/up"


def own_lab(nodes: int) -> tuple[cluster.Lab, str]:
    prefix = "s" + secrets.token_hex(2)
    while (LAB_ROOT / prefix).exists():
        prefix = "s" + secrets.token_hex(2)
    lab = cluster.up(prefix, progress=log, set_current=False, compute=nodes, minion_timeout=600)
    targets = "labnat1,labnat2," + ",".join(compute_nodes(lab))
    data = lab.salt_json(["-L", targets, "state.apply", "-t", "900"], timeout=1200)
    bad = [m for m in targets.split(",") if not isinstance(data.get(m), dict)
           or any(s["result"] is False for s in data[m].values())]
    if bad:
        raise RuntimeError(f"highstate failed on {', '.join(bad)}")
    return lab, prefix


def compute_nodes(lab: cluster.Lab) -> list[str]:
    return sorted((n.name for n in lab.topo.nodes.values() if n.role == "cn"), key=lambda n: int(n[5:]))


def storms(lab: cluster.Lab, nodes: list[str], runs: int, bus: events.Watch) -> tuple[dict[str, dict], list]:
    """``runs`` storms, one at a time: each starts once the previous one is over (every node's
    ``restored`` seen, or CONFIRM_WAIT passed) and the lab has been quiet for QUIET seconds, as
    after a real switch reboot. Storms on a fixed beat would measure the previous storm's
    confirming jobs, still running on this machine's two cores, as much as this one.
    Per node, flapbench's result of each storm; per storm, the last confirmation or None."""
    results: dict[str, dict] = {node: {} for node in nodes}
    confirmed = []
    for k in range(runs):
        got = storm(lab, nodes)
        for node, one in got.items():
            for key in ("each_s", "ups", "link_s"):
                results[node].setdefault(key, []).extend(one[key])
        confirmed.append(confirmation(bus, got))
        log(f"storm {k}: last local heal {max((t for g in got.values() for t in g['each_s'] if t), default=None)} s, "
            f"last confirmation {confirmed[-1]} s")
        time.sleep(QUIET)
    for node in nodes:
        lab.restore_default_route(node)
    return results, confirmed


def storm(lab: cluster.Lab, nodes: list[str]) -> dict[str, dict]:
    """Every node flaps ib0 once at the same wall-clock time (flapbench started ahead of it)."""
    script = ROOT / "lab" / "hpclab" / "flapbench.py"
    start_at = time.time() + LEAD
    out = f"/tmp/{lab.prefix}-storm.json"
    for node in nodes:
        flaps = f"/usr/bin/python3 -I {script} ib0 201 1 0 10 {start_at}"
        cmd = f"{flaps} >{out}.tmp 2>&1 && mv {out}.tmp {out}"
        rc, _, err = lab.exec(node, ["sh", "-c", f"rm -f {out}; setsid sh -c '{cmd}' </dev/null >/dev/null 2>&1 &"])
        if rc != 0:
            raise RuntimeError(f"{node}: {err}")
    if time.time() > start_at:
        raise RuntimeError(f"starting flapbench on {len(nodes)} nodes took longer than {LEAD} s")
    time.sleep(max(0.0, start_at - time.time()) + 1)
    results = {}
    for node in nodes:
        deadline = time.monotonic() + 15
        while True:
            rc, text, _ = lab.exec(node, ["cat", out])
            if rc == 0 and text.strip():
                results[node] = json.loads(text)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{node}: no flapbench result")
            time.sleep(0.5)
    return results


def confirmation(bus: events.Watch, got: dict[str, dict]) -> float | None:
    """Until the master had every node's ``restored`` for this storm (None: not within CONFIRM_WAIT)."""
    ups = {node: one["ups"][0] for node, one in got.items()}

    def restored(node: str) -> float | None:
        stamps = [_stamp(e) for e in bus.seen(lambda e: e["tag"] == "hpc/net/routes/restored"
                                              and e["data"]["id"] == node
                                              and e["data"]["data"].get("reason") == LINK_UP)]
        return min((t for t in stamps if t > ups[node]), default=None)

    deadline = time.monotonic() + CONFIRM_WAIT
    while True:
        stamps = {node: restored(node) for node in ups}
        if None not in stamps.values():
            return max(stamps[node] - ups[node] for node in ups)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def report(name: str, values: list[float]) -> None:
    if values:
        print(f"{name}_median_s={statistics.median(values):.3f}")
        print(f"{name}_p95_s={p95(values):.3f}")
        print(f"{name}_max_s={max(values):.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", help="use this lab (grown, states applied) instead of a new one")
    ap.add_argument("--nodes", type=int, default=30)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    return on_lab(args.prefix, lambda: own_lab(args.nodes), lambda lab: bench_storm(lab, args.nodes, args.runs))


def bench_storm(lab: cluster.Lab, count: int, runs: int) -> None:
    nodes = compute_nodes(lab)[:count]
    with events.watch(lab, "", seconds=runs * (LEAD + CONFIRM_WAIT + QUIET + 20) + 60) as bus:
        results, confirmed = storms(lab, nodes, runs, bus)
        seen = bus.seen()
    last_heal = []
    for k in range(runs):
        each = [got["each_s"][k] for got in results.values()]
        last_heal.append(math.inf if None in each else max(each))
        link = {node: got["link_s"][k] for node, got in results.items()}
        log(f"storm {k}: per node, link up acknowledged by the kernel (s) / route back (s): "
            f"{ {node: (link[node], t) for node, t in zip(results, each, strict=True)} }")
    log(f"per storm, last node's local heal (s): {[round(t, 3) for t in last_heal]}")
    log(f"per storm, last confirmation (s): {[round(c, 3) if c is not None else c for c in confirmed]}")
    links = [e for e in seen if e["tag"] == LINK_UP]
    jobs = [e for e in seen if e["tag"].startswith("salt/job/") and e["tag"].endswith("/new")
            and e["data"].get("fun") == "policy_routing.heal"]
    print(f"storm_nodes={len(nodes)}")
    print(f"storm_runs={runs}")
    report("storm_heal", [t for t in last_heal if t != math.inf])
    print(f"storm_heal_timeouts={sum(t == math.inf for t in last_heal)}")
    report("storm_confirmed", [c for c in confirmed if c is not None])
    print(f"storm_confirmed_missing={confirmed.count(None)}")
    print(f"storm_link_events={len(links)}")
    print(f"storm_heal_jobs={len(jobs)}")
    print(f"storm_master_jobs_per_event={len(jobs) / max(1, len(links)):.3f}")

if __name__ == "__main__":
    sys.exit(main())
