"""Real SSH logins through the lab's SSH VIP, from the client host, as the lab's login user.

Each login is a real ``ssh`` (OpenSSH client, key auth) from ``labclient1`` to the VIP, bound to
one of the client's addresses: distinct addresses are distinct clients for IPVS persistence. The
remote command prints the frontend's hostname: where the login landed.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections import Counter
from collections.abc import Iterator

from .cluster import LOGIN_KEY, LOGIN_USER, Lab

CLIENT = "labclient1"
VIP = "10.12.0.10"


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
