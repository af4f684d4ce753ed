"""`make demo`: the whole example cluster on this machine, configured by Salt, then a fault healed.

1. `lab up` (progress shown: kernel download, VM boot, minions answering);
2. `salt '*' state.apply` through the lab's master, summarised per host and per subsystem, then
   again: nothing left to change;
3. per-user policy routing with real traffic: chosen users leave through the NAT router, others
   are dropped by the firewall;
4. the fault scenarios, shown as they happen: an IB link flap on a compute node drops its
   policy routes, the node's hpc_link beacon puts them back itself, and the master's reactor
   (beacon event -> policy_routing.heal) finds nothing left to do; the master NAT router
   loses its link and a running flow carries on through the backup;
5. the SSH login pool: logins through the VIP spread over the frontends, a frontend's sshd
   killed and taken out by both directors within a second, a drain, and the master director's
   link cut with a session open;
6. diskless: the compute image built in phases (``lab image`` for the phases that need Debian's
   mirror, then ``diskless.image`` on the boot server; a phase already built is a cache hit), then
   labcn3, a QEMU VM with no disk, PXE-boots it: iPXE, its menu, kernel, image, systemd, its key
   accepted by the master's reactor, its highstate; powered off after;
7. the lab stays up: how to look around and how to tear it down.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lab"), str(ROOT / "_utils")]

from hpclab import cluster, events, logins, paths, pxe  # noqa: E402
from hpclab import salt as labsalt  # noqa: E402

DIRECTORS = ("lablvs1", "lablvs2")
VIP = "10.12.0.10:22"
DEMO_SOURCES = "10.12.0.110"  # 15 client addresses of the demo's own (the lab tests use others)


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
    say("fault: labcn1's ib0 goes down and up (an IPoIB interface bounces, as at GSI)")
    print("  table 201 before:\n    " + routes(lab, "labcn1").replace("\n", "\n    "))
    with events.watch(lab, "hpc/net/", seconds=60) as bus:
        lab.exec("labcn1", ["ip", "link", "set", "ib0", "down"])
        print("  ib0 down: " + (routes(lab, "labcn1") or "table 201 is empty (the kernel dropped its routes)"))
        up = time.monotonic()
        lab.exec("labcn1", ["ip", "link", "set", "ib0", "up"])
        while "default" not in routes(lab, "labcn1") and time.monotonic() - up < 30:
            time.sleep(0.01)
        back = time.monotonic() - up
        lab.restore_default_route("labcn1")  # the site's own network configuration would (lab/README.md)
        if "default" not in routes(lab, "labcn1"):
            print("  NOT healed within 30 s: see `lab salt-run routing.status`")
            return
        print(f"  ib0 up: the routes are back within {back:.2f} s of `ip link set ib0 up`, no human action:\n    "
              + routes(lab, "labcn1").replace("\n", "\n    "))
        link = bus.wait_for(lambda e: e["tag"] == "hpc/net/link/ib0/up" and e["data"].get("id") == "labcn1", 20)
        restored = bus.wait_for(lambda e: e["tag"] == "hpc/net/routes/restored" and e["data"].get("id") == "labcn1", 20)
    local = ((link or {}).get("data", {}).get("data") or {}).get("local") or {}
    if local.get("changes"):
        print(f"  put back by labcn1 itself (its hpc_link beacon's local heal, no master needed): "
              f"{len(local['changes'])} route(s) in {local.get('seconds', 0) * 1000:.1f} ms")
    if restored:
        done = restored["data"].get("data", {})
        print("  then the master: hpc/net/link/ib0/up (signed) -> reactor -> policy_routing.heal on labcn1: "
              + (f"{len(done['changes'])} change(s)" if done.get("changes") else "nothing left to change"))
    else:
        print("  the master's heal (hpc/net/routes/restored) was not seen within 20 s")


def weights(lab: cluster.Lab) -> dict[str, list[int]]:
    """{frontend: [its weight on each director]} for the SSH VIP."""
    out: dict[str, list[int]] = {}
    for director in DIRECTORS:
        text = lab.exec(director, ["ipvsadm", "-S", "-n"])[1]
        for line in text.splitlines():
            if f"-t {VIP} -r " in line:
                address = line.split(" -r ")[1].split(":")[0]
                out.setdefault(f"labfe{address[-1]}", []).append(int(line.split("-w ")[1].split()[0]))
    return out


def show_spread(lab: cluster.Lab, sources: list[str], why: str) -> None:
    landed = logins.spread(lab, sources)
    print(f"  {len(sources)} logins ({why}): " + ", ".join(f"{h} {n}" for h, n in sorted(landed.items())))


def salt_run(lab: cluster.Lab, *args: str) -> str:
    argv = labsalt.cli_argv(lab.run, list(args), tool="salt-run")
    return lab.exec(lab.topo.master.name, argv, timeout=300)[1]


def pool_scenario(lab: cluster.Lab) -> None:
    say(f"the SSH login pool: VIP {VIP} on {', '.join(logins.vip_holders(lab)) or 'nobody'}, "
        f"weights {weights(lab)} (one per director)")
    with logins.sources(lab, DEMO_SOURCES, 15) as sources:
        show_spread(lab, sources, "15 client addresses, real ssh, `hostname` through the VIP")
        say("fault: labfe2's sshd is SIGKILLed (`lab kill labfe2 sshd`)")
        lab.kill("labfe2", "sshd")
        start = time.monotonic()
        while any(weights(lab).get("labfe2", [0])) and time.monotonic() - start < 10:
            time.sleep(0.05)
        print(f"  both directors' probes took it out: weights {weights(lab)}, seen {time.monotonic() - start:.2f} s "
              "after the kill by polling both tables (hpc_lvs_health, each director on its own)")
        show_spread(lab, sources, "the same clients again")
        lab.exec("labfe2", ["service", "ssh", "start"])
        time.sleep(3)
        print(f"  sshd back: weights {weights(lab)}")
        say("drain: `salt-run lvs.drain labfe3 wait=False` (weight 0; it leaves once idle)")
        salt_run(lab, "lvs.drain", "labfe3", "wait=False")
        left = "labfe3 left both tables at once (no session open there)" if "labfe3" not in weights(lab) else ""
        print(f"  weights {weights(lab)} {left}")
        show_spread(lab, sources, "new clients avoid labfe3")
        salt_run(lab, "lvs.undrain", "labfe3")
        print(f"  `salt-run lvs.undrain labfe3`: weights {weights(lab)}")
    say("fault: lablvs1, the master director, loses its WAN link with an SSH session open")
    out = logins.open_session(lab, "demo", ticks=75, every=0.2)  # 15 s of output
    time.sleep(3)
    lab.exec("lablvs1", ["ip", "link", "set", "eth1", "down"])
    try:
        start = time.monotonic()
        while logins.vip_holders(lab) != ["lablvs2"] and time.monotonic() - start < 15:
            time.sleep(0.05)
        print(f"  the VIP is on {', '.join(logins.vip_holders(lab))}, seen {time.monotonic() - start:.2f} s after "
              "the cut by polling both directors (keepalived: 3 missed 1 s adverts); a new login lands on "
              + logins.login(lab))
        time.sleep(4)
    finally:
        lab.exec("lablvs1", ["ip", "link", "set", "eth1", "up"])
    time.sleep(10)
    lines = logins.session_result(lab, out)
    print(f"  VIP back on {', '.join(logins.vip_holders(lab))}; the open session printed "
          f"{sum(ln.isdigit() for ln in lines)}/75 lines, {lines[-1] if lines else 'nothing'} "
          "(the directors sync their connections both ways)")


# What each of hpclab.pxe's console milestones means, for the demo's reader.
BOOT_STEPS = {
    "ipxe": "iPXE starts (the NIC's ROM)",
    "menu": "its menu over HTTP (menus/labcn3.ipxe: the pinned image version)",
    "kernel": "the image's kernel runs",
    "image": "the initramfs fetches the squashfs (then checks it against the manifest)",
    "systemd": "systemd starts from the squashfs under a RAM overlay",
    "identity": "hpcnet: identity (its name from DHCP, the MAC it booted from)",
    "key": "hpcnet: key accepted (the master's reactor: a registered node)",
    "applied": "hpcnet: configuration applied (its highstate, before its minion starts)",
}


def diskless_scenario(lab: cluster.Lab) -> None:
    say(f"diskless: the {pxe.IMAGE} image, built in phases (a phase already built is a cache hit)")
    started = time.monotonic()
    # The phases that need Debian's mirror, built from this machine into the boot server's store
    # (lab/README.md); the boot server's diskless.image then builds the rest and serves it.
    subprocess.run([str(ROOT / "lab" / "lab"), "image", "--prefix", lab.prefix, pxe.IMAGE], check=True)
    pxe.add_nodes(lab)  # labcn[3-4] in the inventory: their leases and menus
    ran = pxe.serve(lab)
    print(f"  boot server ran: {', '.join(ran) or 'nothing (every phase a cache hit)'}; "
          f"image served {time.monotonic() - started:.0f} s after the build started")
    say("labcn3, a QEMU VM with no disk, PXE-boots from labboot1 (seconds from power-on)")
    boot = pxe.Boot(lab.run, "labcn3", pxe.NODES["labcn3"])
    pxe.forget(lab, ["labcn3"])
    boot.power_on()
    try:
        for milestone in pxe.MILESTONES:
            at = boot.wait(milestone, 900)
            print(f"  {at:5.0f} s  {BOOT_STEPS.get(milestone, milestone)}", flush=True)
    finally:
        boot.power_off()
        pxe.forget(lab, ["labcn3"])
    print("  labcn3 powered off, its key deleted (its next boot makes a new one)")


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
    pool_scenario(lab)
    diskless_scenario(lab)
    say(f"the lab {lab.prefix} stays up. Look around:")
    print("  lab/lab status                 hosts, addresses, minions, daemons")
    print("  lab/lab salt '*' test.ping     salt through the lab's master")
    print("  lab/lab exec lablvs1 ipvsadm -Ln")
    print("  lab/lab ssh labcn1             a shell on a compute node")
    print("Tear it down: lab/lab down")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
