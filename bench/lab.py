#!/usr/bin/env python3
"""Bench the lab: how long the example cluster takes to come up and to converge, and what it costs.

Not a test. Brings its own lab up (own random prefix, not made the current one) and down again.
Prints ``name=value`` lines:

    lab_up_s          lab up until all 13 minions answer test.ping through the master
    lab_ready_s       ... plus saltutil.sync_all on every minion (what `lab up` waits for)
    highstate_s       a full highstate through the master (first run: everything changes)
    highstate_noop_s  the second highstate (nothing to change)
    lab_peak_rss_mb   peak of the summed RSS of every process of the run (QEMU included),
                      sampled every 0.5 s through both highstates

Run as root: ``.venv/bin/python bench/lab.py`` (from the checkout).
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for sub in ("lab", "_utils"):
    sys.path.insert(0, str(ROOT / sub))

from hpclab import cluster  # noqa: E402
from hpclab.registry import LAB_ROOT  # noqa: E402


class PeakRss(threading.Thread):
    def __init__(self, lab: cluster.Lab, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.lab, self.every, self.peak = lab, every, 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.lab.rss_mb())
            self.done.wait(self.every)


def highstate(lab: cluster.Lab) -> tuple[float, int, int]:
    """Seconds, failed states, changed states of one highstate through the master."""
    t0 = time.monotonic()
    data = lab.salt_json(["*", "state.apply", "-t", "600"], timeout=900)
    took = time.monotonic() - t0
    missing = [m for m in lab.topo.minions if not isinstance(data.get(m), dict)]
    if missing:
        raise RuntimeError(f"highstate: no state results from {', '.join(missing)}")
    states = [s for v in data.values() for s in v.values()]
    return took, sum(s["result"] is False for s in states), sum(bool(s.get("changes")) for s in states)


def main() -> int:
    prefix = "b" + secrets.token_hex(2)
    while (LAB_ROOT / prefix).exists():
        prefix = "b" + secrets.token_hex(2)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    try:
        t0 = time.monotonic()
        lab = cluster.up(prefix, progress=log, set_current=False)
        ready = time.monotonic() - t0
        sampler = PeakRss(lab)
        sampler.start()
        first, failed1, changed1 = highstate(lab)
        second, failed2, changed2 = highstate(lab)
        sampler.done.set()
        sampler.join()
        print(f"lab_up_s={lab.timings['minions_s']:.1f}")
        print(f"lab_ready_s={ready:.1f}")
        print(f"highstate_s={first:.1f}")
        print(f"highstate_noop_s={second:.1f}")
        print(f"lab_peak_rss_mb={sampler.peak:.0f}")
        log(f"first highstate: {failed1} failed, {changed1} changed; second: {failed2} failed, {changed2} changed")
        return 0 if failed1 == failed2 == changed2 == 0 else 1
    finally:
        cluster.down(prefix, progress=log)


if __name__ == "__main__":
    sys.exit(main())
