"""`make demo`: the whole example cluster on this machine, configured by Salt, then a fault healed.

1. `lab up` (progress shown: kernel download, VM boot, minions answering);
2. `salt '*' state.apply` through the lab's master, summarised per host and per subsystem, then
   again: nothing left to change;
3. per-user policy routing with real traffic: chosen users leave through the NAT router, others
   are dropped by the firewall;
4. the fault scenarios that exist so far, shown as they happen: an IB link flap on a compute
   node drops its policy routes and the beacon -> reactor -> heal path puts them back; the
   master NAT router loses its link and a running flow carries on through the backup;
5. the lab stays up: how to look around and how to tear it down.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lab"), str(ROOT / "_utils")]

from hpclab import cluster, paths  # noqa: E402
from hpclab import salt as labsalt  # noqa: E402


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def highstate(lab: cluster.Lab) -> dict:
    # -t 600: a minion in a TCG VM needs ~90 s for its highstate (lab/README.md)
    _, out, _ = lab.salt(["*", "state.apply", "--out=json", "--static", "-t", "600"], timeout=900)
    result = labsalt.parse_json(out)
    for minion in lab.topo.minions:
        result.setdefault(minion, "did not return")  # counted as a failure, never silently dropped
    return result


def summarise(result: dict) -> int:
    failed = 0
    for host in sorted(result):
        states = result[host] if isinstance(result[host], dict) else {}
        done = Counter(key.split("_|-")[0].split(".")[0] for key, v in states.items() if v.get("changes"))
        bad = [v.get("__id__", key) for key, v in states.items() if v.get("result") is False]
        failed += len(bad) + (0 if isinstance(result[host], dict) else 1)
        what = ", ".join(f"{mod} x{n}" for mod, n in sorted(done.items())) or "nothing to change"
        if not isinstance(result[host], dict):
            print(f"  {host:<11} FAILED: {result[host]}")
            continue
        print(f"  {host:<11} {len(states):3d} states  changed: {what}" + (f"  FAILED: {bad}" if bad else ""))
    return failed


def changes(result: dict) -> int:
    return sum(bool(v.get("changes")) for states in result.values() if isinstance(states, dict)
               for v in states.values())


def users_scenario(lab: cluster.Lab) -> None:
    say("per-user routing on labcn1: who reaches labinet1 (the internet), and as whom?")
    paths.start_server(lab, "labinet1", (paths.CHOSEN_PORT,))
    for user, why in (("aliprod", "chosen by name"), ("alicepri", "group alice, as primary group"),
                      ("alicesup", "group alice, as supplementary group"), ("bob", "not chosen")):
        got = paths.connect_as(lab, "labcn1", user, paths.INTERNET, paths.CHOSEN_PORT, 5)
        seen = f"seen as {', '.join(got['seen_as'])}" if got["seen_as"] else "dropped by labfw1"
        print(f"  {user:<9} ({why}): {got['ok']}/5 connected, {seen}")


def vip_holder(lab: cluster.Lab) -> str:
    return ", ".join(paths.vip_holders(lab)) or "nobody"


def nat_failover_scenario(lab: cluster.Lab) -> None:
    say("fault: labnat1, the master NAT router, loses its ib link during a flow (`lab partition labnat1 ib0`)")
    print(f"  NAT gateway VIP 10.13.0.30 on: {vip_holder(lab)}")
    result = paths.stream_as(lab, "labcn1", "aliprod", paths.INTERNET, paths.CHOSEN_PORT, seconds=6)
    time.sleep(2)
    lab.partition("labnat1", ifaces=["ib0"])
    try:
        time.sleep(1)
        print(f"  1 s later the VIP is on: {vip_holder(lab)}")
        deadline = time.monotonic() + 20
        while (got := paths.stream_result(lab, "labcn1", result)) is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        lab.partition("labnat1", up=True, ifaces=["ib0"])
    if got and not got["error"]:
        print(f"  the flow (a probe every 10 ms) carried on: {got['echoed']}/{got['sent']} echoed, "
              f"longest wait {got['max_gap_s']:.2f} s (conntrackd had synced it to labnat2)")
    else:
        print(f"  the flow broke: {got}")
    time.sleep(2)
    print(f"  labnat1's link back: the VIP is on {vip_holder(lab)} again (higher priority)")


def routes(lab: cluster.Lab, host: str) -> str:
    return lab.exec(host, ["ip", "route", "show", "table", "201"])[1].strip()


def flap_scenario(lab: cluster.Lab) -> None:
    say("fault: `lab flap labcn1 ib0` (an IPoIB interface bounces, as at GSI)")
    print("  table 201 before:\n    " + routes(lab, "labcn1").replace("\n", "\n    "))
    lab.flap("labcn1", "ib0")
    start = time.monotonic()
    print("  right after the flap: " + (routes(lab, "labcn1") or "(table 201 is empty: the kernel dropped the routes)"))
    while time.monotonic() - start < 30:
        if "default" in routes(lab, "labcn1"):
            print(f"  healed after {time.monotonic() - start:.2f} s, no human action "
                  "(hpc_link beacon -> reactor -> policy_routing.heal):")
            print("    " + routes(lab, "labcn1").replace("\n", "\n    "))
            return
        time.sleep(0.05)
    print("  NOT healed within 30 s: see `lab salt-run routing.status`")


def main() -> int:
    say("lab up: the example cluster (pillar/) on this machine")
    lab = cluster.up(progress=lambda m: print("  " + m, flush=True))
    say("salt '*' state.apply, through the lab's master")
    failed = summarise(highstate(lab))
    print(f"  {failed} failed state(s)")
    say("salt '*' state.apply again: nothing should be left to change")
    again = highstate(lab)
    failed += summarise(again)
    print(f"  {changes(again)} change(s)")
    users_scenario(lab)
    flap_scenario(lab)
    nat_failover_scenario(lab)
    say(f"the lab {lab.prefix} stays up. Look around:")
    print("  lab/lab status                 hosts, addresses, minions, daemons")
    print("  lab/lab salt '*' test.ping     salt through the lab's master")
    print("  lab/lab exec lablvs1 ipvsadm -Ln")
    print("  lab/lab ssh labcn1             a shell on a compute node")
    print("Tear it down: lab/lab down")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
