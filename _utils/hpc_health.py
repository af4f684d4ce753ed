"""Health of the login pool's real servers, as a director sees it: one probe, and rise/fall counts.

A probe is what a client needs, not only a TCP connect: the connection is accepted *and* sshd
says ``SSH-`` within the timeout (a wedged sshd that accepts and never speaks is dead to users;
keepalived's TCP_CHECK calls it alive). A frontend that drops packets silently shows as a
connect timeout, one that refuses as a refusal: both fail.

``Tracker`` turns probe results into transitions: ``fall`` failures in a row take a server down,
``rise`` successes in a row bring it back; one bad probe among good ones changes nothing.
Unknown servers start up (the pillar's weights stand until a probe says otherwise).

Pure Python plus one socket per probe; no Salt dunders.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

BANNER = b"SSH-"
SSH_PORT = 22  # what a fwmark service's real server (port 0: the packet's own) is probed on


def targets(reals: Iterable[Any]) -> list[tuple[str, int]]:
    """Each distinct (address, port) to probe among a table's real servers, in order."""
    return list(dict.fromkeys((r.address, r.port or SSH_PORT) for r in reals))


def verdict(results: Sequence[bool]) -> bool | None:
    """A re-probe's clear verdict: True when every probe succeeded, False when every one failed,
    None when they disagree (a flapping server: no change on a claim that does not hold)."""
    if results and all(results):
        return True
    if results and not any(results):
        return False
    return None


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str  # "SSH-2.0-OpenSSH_9.2p1 ...", "refused", "timeout", "no banner", "not ssh: ..."
    seconds: float


def probe_ssh(address: str, port: int = 22, timeout: float = 0.5, connect_timeout: float | None = None) -> Probe:
    """Connect within ``connect_timeout`` (default: ``timeout``) and read the first line, within
    ``timeout`` seconds in all. The two differ because they measure different things: the
    server's kernel answers a SYN at once however busy sshd is, so a connect that takes long
    means packets are lost (a silent frontend); sshd's banner waits for a fork and an exec,
    which a loaded frontend may take a while to do."""
    started = time.monotonic()
    connected, data = False, b""
    try:
        with socket.create_connection((address, port), timeout=min(timeout, connect_timeout or timeout)) as sock:
            connected = True
            while b"\n" not in data and len(data) < 256:
                left = started + timeout - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
    except ConnectionRefusedError:
        return Probe(False, "refused", time.monotonic() - started)
    except TimeoutError:  # socket.timeout is TimeoutError since Python 3.10
        return Probe(False, "no banner" if connected else "timeout", time.monotonic() - started)
    except OSError as exc:
        return Probe(False, exc.strerror or str(exc), time.monotonic() - started)
    took = time.monotonic() - started
    line = data.split(b"\n", 1)[0].strip().decode(errors="replace")
    if data.startswith(BANNER):
        return Probe(True, line, took)
    return Probe(False, f"not ssh: {line[:40]}" if line else "no banner", took)


@dataclass
class Tracker:
    rise: int = 2
    fall: int = 2
    up: dict[str, bool] = field(default_factory=dict)
    streak: dict[str, int] = field(default_factory=dict)  # results in a row against the current state

    def observe(self, target: str, ok: bool) -> str | None:
        """Record one probe of ``target``; "down" or "up" when its state changes, else None."""
        current = self.up.setdefault(target, True)
        if ok == current:
            self.streak[target] = 0
            return None
        self.streak[target] = self.streak.get(target, 0) + 1
        if self.streak[target] < (self.fall if current else self.rise):
            return None
        self.up[target], self.streak[target] = ok, 0
        return "up" if ok else "down"
