#!/usr/bin/env python3
"""Bench diskless boots in the lab: power-on to the end of the node's first highstate. Not a test:
``name=value`` lines, progress on stderr.

The nodes are QEMU VMs (TCG, 1 GB, one CPU) that PXE-boot from labboot1 (hpclab.pxe: labcn3,
labcn4 added to the example inventory), the image the example pillar's ``compute`` (``lab image``
here, then ``diskless.image`` on the boot server). Each boot is timed from power-on by what the
VM prints on its console, and by the master's keys:

    boot_to_highstate_s         one VM: power-on -> hpcnet-config-apply finished (its highstate)
    boot_accepted_s             one VM: power-on -> its minion's key accepted on the master
    boot_<milestone>_s          one VM: power-on -> ipxe, menu, kernel, image (the initramfs starts
                                fetching the squashfs), systemd, identity (its first contact with
                                the master starts), key (the node knows its key accepted: the boot's
                                highstate starts)
    boot_to_highstate_pair_s    two VMs powered on together: the later one's power-on -> highstate

Between boots the nodes are off and their keys deleted (a first boot each time).

    bench/boot.py [--prefix P] [--runs N]

Without ``--prefix`` it brings its own lab up with a highstate everywhere, and takes it down at the
end. Run as root.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lvs_detect import own_lab  # noqa: E402
from policy_routing import cluster, log, on_lab  # noqa: E402

from hpclab import pxe  # noqa: E402

LAB = HERE.parent / "lab" / "lab"
TIMEOUT_S = 900


class Accepted(threading.Thread):
    """When each node's key showed as accepted on the master (looked at every second)."""

    def __init__(self, lab: cluster.Lab, nodes: list[str]) -> None:
        super().__init__(daemon=True)
        self.lab, self.nodes, self.at, self.started = lab, nodes, {}, time.monotonic()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() and len(self.at) < len(self.nodes):
            for node in self.nodes:
                if node not in self.at and pxe.accepted(self.lab, node):
                    self.at[node] = time.monotonic() - self.started
            self.done.wait(1.0)


def boot(lab: cluster.Lab, nodes: list[str]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Power ``nodes`` on together; each one's milestones and key acceptance, from power-on."""
    pxe.forget(lab, nodes)
    watch = Accepted(lab, nodes)
    boots = [pxe.Boot(lab.run, node, pxe.NODES[node]) for node in nodes]
    watch.start()
    try:
        for b in boots:
            b.power_on()
        pxe.wait_all(boots, "applied", TIMEOUT_S)
        for b in boots:
            log(f"{b.name}: {', '.join(f'{k} {v:.0f} s' for k, v in b.seen.items())}; "
                f"accepted {watch.at.get(b.name, float('nan')):.0f} s")
    finally:
        watch.done.set()
        for b in boots:
            b.power_off()
        pxe.forget(lab, nodes)
    return {b.name: b.seen for b in boots}, watch.at


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--prefix", help="use this lab (up, highstate applied) instead of a new one")
    ap.add_argument("--runs", type=int, default=1, help="boots of one VM, then of two at once (default 1)")
    args = ap.parse_args()

    def body(lab: cluster.Lab) -> None:
        started = time.monotonic()
        subprocess.run(["nice", "-n", "19", str(LAB), "image", "--prefix", lab.prefix, pxe.IMAGE], check=True,
                       stdout=sys.stderr)
        pxe.add_nodes(lab)
        try:
            log(f"boot server phases: {pxe.serve(lab)}; image ready after {time.monotonic() - started:.0f} s")
            singles, accepted, pairs = [], [], []
            for _ in range(args.runs):
                seen, at = boot(lab, ["labcn3"])
                singles.append(seen["labcn3"])
                accepted.append(at["labcn3"])
            for _ in range(args.runs):
                seen, _ = boot(lab, ["labcn3", "labcn4"])
                pairs.append(max(s["applied"] for s in seen.values()))
        finally:
            lab.set_pillar("cluster.sls", None)
        print(f"boot_to_highstate_s={statistics.median(s['applied'] for s in singles):.0f}")
        print(f"boot_accepted_s={statistics.median(accepted):.0f}")
        for milestone in pxe.MILESTONES:
            if milestone != "applied" and all(milestone in s for s in singles):
                print(f"boot_{milestone}_s={statistics.median(s[milestone] for s in singles):.0f}")
        print(f"boot_to_highstate_pair_s={statistics.median(pairs):.0f}")
        print(f"boot_runs={args.runs}")

    return on_lab(args.prefix, own_lab, body)


if __name__ == "__main__":
    sys.exit(main())
