"""Inside a lab compute node: flap an interface N times and time how long the policy routes
take to come back (the beacon's local heal does the work; the master confirms after).

    flapbench.py IFACE TABLE N [PAUSE_S] [TIMEOUT_S]

Prints JSON: {"heal_s": [...], "timeouts": k, "ups": [wall-clock time of each link up]}. Stdlib
only; the clock starts when the link is set up again (the routes are gone from the moment it went down, LAB-NOTES).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time


def routes(table: str) -> str:
    return subprocess.run(["ip", "route", "show", "table", table], capture_output=True, text=True).stdout


def flap_once(iface: str, table: str, timeout: float, ups: list[float]) -> float | None:
    subprocess.run(["ip", "link", "set", iface, "down"], check=True)
    start = time.monotonic()
    ups.append(time.time())  # wall clock: the master's events are matched to it (one host clock)
    subprocess.run(["ip", "link", "set", iface, "up"], check=True)
    while time.monotonic() - start < timeout:
        if "default" in routes(table):
            return time.monotonic() - start
        time.sleep(0.005)
    return None


def main(argv: list[str]) -> int:
    iface, table, count = argv[0], argv[1], int(argv[2])
    pause = float(argv[3]) if len(argv) > 3 else 1.0
    timeout = float(argv[4]) if len(argv) > 4 else 10.0
    times, timeouts, ups = [], 0, []
    for _ in range(count):
        took = flap_once(iface, table, timeout, ups)
        if took is None:
            timeouts += 1
        else:
            times.append(round(took, 4))
        time.sleep(pause)
    print(json.dumps({"heal_s": times, "timeouts": timeouts, "ups": ups}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
