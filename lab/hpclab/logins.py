"""Real SSH logins through the lab's SSH VIP, from the client host, as the lab's login user.

Each login is a real ``ssh`` (OpenSSH client, key auth) from ``labclient1`` to the VIP, bound to
one of the client's addresses: distinct addresses are distinct clients for IPVS persistence. The
remote command prints the frontend's hostname: where the login landed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections import Counter
from collections.abc import Iterator

from .cluster import LOGIN_KEY, LOGIN_USER, Lab

CLIENT = "labclient1"
VIP = "10.12.0.10"  # the example pillar's ssh service: direct routing (seed 001)
NAT_VIP = "10.12.0.9"  # its ssh_nat service: NAT, the frontends reached on admin (seed 000)
VIPS = {"dr": VIP, "nat": NAT_VIP}
DIRECTORS = ("lablvs1", "lablvs2")


def ssh_argv(source: str | None, command: str = "hostname", known_hosts: str = "/dev/null",
             strict: str = "no", vip: str = VIP, port: int = 22) -> list[str]:
    argv = ["ssh", "-i", LOGIN_KEY, "-p", str(port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", f"StrictHostKeyChecking={strict}",
            "-o", "LogLevel=ERROR"]
    if source:
        argv += ["-b", source]
    return argv + [f"{LOGIN_USER}@{vip}", command]


def login(lab: Lab, source: str | None = None, **kw) -> str:
    """One login; the frontend's hostname, or raises with ssh's error."""
    rc, out, err = lab.exec(CLIENT, ssh_argv(source, **kw), timeout=30)
    if rc != 0:
        raise RuntimeError(f"ssh from {source or CLIENT} to the VIP failed (rc {rc}): {err.strip()}")
    return out.strip()


def spread(lab: Lab, sources: list[str]) -> Counter:
    """One login from each source, in order: how many landed on each frontend."""
    return Counter(login(lab, s) for s in sources)


@contextlib.contextmanager
def sources(lab: Lab, first: str, count: int, iface: str = "eth1", prefix: int = 24) -> Iterator[list[str]]:
    """``count`` extra addresses on the client from ``first`` on (lab addresses only), removed after."""
    start = ipaddress.IPv4Address(first)
    addrs = [str(start + i) for i in range(count)]
    lines = "".join(f"addr add {a}/{prefix} dev {iface}\n" for a in addrs)
    rc, _, err = lab.exec(CLIENT, ["ip", "-batch", "-"], stdin=lines)
    assert rc == 0, err
    try:
        yield addrs
    finally:
        lab.exec(CLIENT, ["ip", "-force", "-batch", "-"], stdin=lines.replace("addr add", "addr del"))


# (lab prefix, session name) -> the stop file of the session opened last under that name
_STOPS: dict[tuple[str, str], str] = {}


def vip_holders(lab: Lab) -> list[str]:
    """The directors that hold the SSH VIP now (one, unless a failover is under way)."""
    return [d for d in DIRECTORS if f" {VIP}/" in lab.exec(d, ["ip", "-4", "-o", "addr", "show"])[1]]


def open_session(lab: Lab, name: str, ticks: int, every: float = 0.2, source: str | None = None,
                 vip: str = VIP) -> str:
    """Start an SSH session through the VIP that prints a counter ``ticks`` times, ``every`` seconds
    apart, in the background on the client; its output (then ``rc=N``) goes to a file whose path
    is returned. A session that breaks ends early, or with ssh's error and a non-zero rc. It also
    ends, cleanly (rc=0), at the first tick after ``end_session`` on the frontend it runs on."""
    out = f"/tmp/{lab.prefix}-session-{name}.out"
    # A stop file of its own: one an earlier session of that name left on a reused lab (root's,
    # which the session's user cannot remove from /tmp) would end this one at once.
    stop = _STOPS[(lab.prefix, name)] = f"/tmp/{lab.prefix}-session-{name}-{time.time_ns()}.stop"
    remote = f"i=0; while [ $i -lt {ticks} ] && [ ! -e {stop} ]; do i=$((i+1)); echo $i; sleep {every}; done"
    argv = " ".join(f"'{a}'" for a in ssh_argv(source, remote, vip=vip))
    rc, _, err = lab.exec(CLIENT, ["sh", "-c", f"({argv}; echo rc=$?) > {out} 2>&1 &"])
    assert rc == 0, err
    return out


def session_result(lab: Lab, out: str) -> list[str]:
    return lab.exec(CLIENT, ["cat", out])[1].splitlines()


def end_session(lab: Lab, name: str, host: str) -> None:
    """Have session ``name`` (opened by this process), open on frontend ``host``, end at its next
    tick (as a user logs out)."""
    rc, _, err = lab.exec(host, ["touch", _STOPS[(lab.prefix, name)]])
    assert rc == 0, err
