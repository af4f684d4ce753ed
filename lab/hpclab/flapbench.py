"""Inside a lab compute node: flap an interface N times and time how long the policy routes
take to come back (the beacon's local heal does the work; the master confirms after).

    flapbench.py IFACE TABLE N [PAUSE_S] [TIMEOUT_S] [START_AT]

Prints JSON: {"heal_s": [...], "timeouts": k, "ups": [wall-clock time of each link up],
"each_s": [heal time or null, per flap], "link_s": [time the kernel took to set the link up]}.
Stdlib only; the clock starts when the link is set up again (the routes are gone from the
moment it went down, LAB-NOTES). With START_AT (a wall-clock
time), flap i starts at START_AT + i x PAUSE_S: nodes started with the same START_AT flap together
(the storm bench).
"""

from __future__ import annotations

import json
import select
import socket
import struct
import sys
import time

RTMGRP_IPV4_ROUTE = 0x40
RTM_NEWLINK, RTM_NEWROUTE, NLMSG_ERROR = 16, 24, 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
IFF_UP = 0x1


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


def set_link(ctl: socket.socket, index: int, up: bool) -> None:
    """``ip link set IFACE up|down`` as one netlink request (RTM_NEWLINK, IFF_UP in the change
    mask), acknowledged: no fork of ip(8), whose cost 30 nodes at once would add to what they
    measure (a real flap forks nothing)."""
    body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP)
    ctl.send(struct.pack("=IHHII", 16 + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body)
    ack = ctl.recv(1 << 16)
    _length, kind = struct.unpack_from("=IH", ack)
    error = struct.unpack_from("=i", ack, 16)[0] if kind == NLMSG_ERROR else 0
    if error:
        raise OSError(-error, f"RTM_NEWLINK ifindex {index} {'up' if up else 'down'}")


def flap_once(iface: str, table: str, timeout: float) -> dict:
    """Down, up, then the time until the kernel announces table's default route again. Waits on a
    netlink socket, not by polling `ip route` (30 nodes polling would eat the CPU they measure).
    Also how long the kernel took to acknowledge the link up: every network namespace of the lab
    shares one kernel and its RTNL lock, so 30 links set up at once come up one after the other
    (on real nodes each kernel brings its own link up)."""
    index = socket.if_nametoindex(iface)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock, \
            socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as ctl:
        sock.bind((0, RTMGRP_IPV4_ROUTE))
        set_link(ctl, index, up=False)
        start = time.monotonic()
        flap = {"up_at": time.time(), "link_s": None, "heal_s": None}  # wall clock: matched to the master's events
        set_link(ctl, index, up=True)
        flap["link_s"] = round(time.monotonic() - start, 4)
        while (left := timeout - (time.monotonic() - start)) > 0:
            if select.select([sock], [], [], left)[0] and default_added(sock.recv(1 << 16), int(table)):
                flap["heal_s"] = round(time.monotonic() - start, 4)
                break
    return flap


def main(argv: list[str]) -> int:
    iface, table, count = argv[0], argv[1], int(argv[2])
    pause = float(argv[3]) if len(argv) > 3 else 1.0
    timeout = float(argv[4]) if len(argv) > 4 else 10.0
    start_at = float(argv[5]) if len(argv) > 5 else None
    flaps = []
    for i in range(count):
        if start_at is not None:
            time.sleep(max(0.0, start_at + i * pause - time.time()))
        flaps.append(flap_once(iface, table, timeout))
        if start_at is None:
            time.sleep(pause)
    each = [f["heal_s"] for f in flaps]
    print(json.dumps({"heal_s": [t for t in each if t is not None], "timeouts": each.count(None),
                      "ups": [f["up_at"] for f in flaps], "each_s": each, "link_s": [f["link_s"] for f in flaps]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
