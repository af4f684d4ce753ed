"""Inside a lab compute node: flap an interface N times and time how long the policy routes
take to come back (the beacon's local heal does the work; the master confirms after).

    flapbench.py IFACE TABLE N [PAUSE_S] [TIMEOUT_S] [START_AT]

Prints JSON: {"heal_s": [...], "timeouts": k, "ups": [wall-clock time of each link up],
"each_s": [heal time or null, per flap]}. Stdlib only; the clock starts when the link is set up
again (the routes are gone from the moment it went down, LAB-NOTES). With START_AT (a wall-clock
time), flap i starts at START_AT + i x PAUSE_S: nodes started with the same START_AT flap together
(the storm bench).
"""

from __future__ import annotations

import json
import select
import socket
import struct
import subprocess
import sys
import time

RTMGRP_IPV4_ROUTE = 0x40
RTM_NEWROUTE = 24


def default_added(buf: bytes, table: int) -> bool:
    """Whether a netlink datagram holds RTM_NEWROUTE for a default route (dst_len 0) in ``table``."""
    off = 0
    while off + 16 <= len(buf):
        length, kind = struct.unpack_from("=IH", buf, off)
        if length < 16:
            break
        if kind == RTM_NEWROUTE and off + 21 <= len(buf):
            _family, dst_len, _src_len, _tos, rt_table = struct.unpack_from("=BBBBB", buf, off + 16)
            if rt_table == table and dst_len == 0:
                return True
        off += (length + 3) & ~3
    return False


def flap_once(iface: str, table: str, timeout: float, ups: list[float]) -> float | None:
    """Down, up, then the time until the kernel announces table's default route again. Waits on a
    netlink socket, not by polling `ip route` (30 nodes polling would eat the CPU they measure)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, RTMGRP_IPV4_ROUTE))
        subprocess.run(["ip", "link", "set", iface, "down"], check=True)
        start = time.monotonic()
        ups.append(time.time())  # wall clock: the master's events are matched to it (one host clock)
        subprocess.run(["ip", "link", "set", iface, "up"], check=True)
        while (left := timeout - (time.monotonic() - start)) > 0:
            if select.select([sock], [], [], left)[0] and default_added(sock.recv(1 << 16), int(table)):
                return time.monotonic() - start
    return None


def main(argv: list[str]) -> int:
    iface, table, count = argv[0], argv[1], int(argv[2])
    pause = float(argv[3]) if len(argv) > 3 else 1.0
    timeout = float(argv[4]) if len(argv) > 4 else 10.0
    start_at = float(argv[5]) if len(argv) > 5 else None
    each, ups = [], []
    for i in range(count):
        if start_at is not None:
            time.sleep(max(0.0, start_at + i * pause - time.time()))
        took = flap_once(iface, table, timeout, ups)
        each.append(None if took is None else round(took, 4))
        if start_at is None:
            time.sleep(pause)
    times = [t for t in each if t is not None]
    print(json.dumps({"heal_s": times, "timeouts": each.count(None), "ups": ups, "each_s": each}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
