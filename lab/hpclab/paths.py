"""Which way does traffic leave the compute nodes? Real TCP from real users, counted at the gateways.

Lab scaffolding for the per-user policy routing tests and benchmarks (the states configure the
nodes and NAT routers; this module only generates traffic and counts it):

- ``start_server(lab, host, ports)``: ``traffic.py serve`` in a lab host, in the background. It
  lives in the host's PID namespace, so it goes when the host goes (``lab down``).
- ``install_counters(lab)``: an nft table ``inet hpclab_paths`` of the lab's own on each gateway
  of the ib network (``labfw1``, the default route; ``labnat1``/``labnat2``, the NAT path) that
  counts, in prerouting, the TCP packets arriving from ib for the chosen users' port and for the
  other users' port. A packet of a chosen user counted at ``labfw1`` left by the default route: a
  leak. One of another user counted at a NAT router left by the NAT path: a leak the other way.
- ``connect_as(lab, host, user, ...)``: ``traffic.py connect`` as that user (``runuser``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import cluster

TRAFFIC = Path(__file__).resolve().with_name("traffic.py")
TABLE = "hpclab_paths"
CHOSEN_PORT = 8001  # the chosen users connect here ...
OTHER_PORT = 8002  # ... everyone else here: the port tells the gateways whose packet it is
DEFAULT_GATEWAYS = ("labfw1",)
NAT_ROUTERS = ("labnat1", "labnat2")
NAT_VIP = "10.13.0.30/16"  # the gateway of table 201, on the NAT routers' ib0
INTERNET = "10.12.0.250"  # labinet1: reachable from ib only through the NAT routers
FW_WAN = "10.12.0.254"  # labfw1's wan address: reachable from ib by the main table's default route


def _run(lab: cluster.Lab, host: str, argv: list[str], timeout: float = 120, stdin: str | None = None) -> str:
    rc, out, err = lab.exec(host, argv, timeout=timeout, stdin=stdin)
    if rc != 0:
        raise RuntimeError(f"{host}: {' '.join(argv)}: rc {rc}: {(err or out).strip()[-500:]}")
    return out


def start_server(lab: cluster.Lab, host: str, ports: tuple[int, ...] = (CHOSEN_PORT, OTHER_PORT)) -> None:
    """An echo server on ``ports`` in ``host``, detached; returns once it listens. Ports that
    already listen there (a server of an earlier call) are left as they are."""
    listening = _run(lab, host, ["ss", "-Hltn"])
    ports = tuple(p for p in ports if f":{p} " not in listening)
    if not ports:
        return
    log = f"/tmp/{lab.prefix}-traffic-{'-'.join(map(str, ports))}.log"
    serve = f"setsid /usr/bin/python3 -I {TRAFFIC} serve {' '.join(map(str, ports))} </dev/null >{log} 2>&1 &"
    wait = f"for i in $(seq 50); do grep -q serving {log} 2>/dev/null && exit 0; sleep 0.1; done; cat {log}; exit 1"
    _run(lab, host, ["sh", "-c", f"{serve} {wait}"])


def _counter_rules() -> str:
    return f"""table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
  counter chosen {{ }}
  counter other {{ }}
  chain count {{
    type filter hook prerouting priority raw; policy accept;
    iifname "ib0" tcp dport {CHOSEN_PORT} counter name chosen
    iifname "ib0" tcp dport {OTHER_PORT} counter name other
  }}
}}
"""


def install_counters(lab: cluster.Lab) -> None:
    """(Re)create the counting table on every ib gateway: all counters at 0."""
    for host in (*DEFAULT_GATEWAYS, *NAT_ROUTERS):
        _run(lab, host, ["nft", "-f", "-"], stdin=_counter_rules())


@dataclass(frozen=True)
class PathCounts:
    """Packets from ib seen by the default gateway(s) and by the NAT routers, by traffic class."""

    chosen_via_default: int
    chosen_via_nat: int
    other_via_default: int
    other_via_nat: int


def _counters(lab: cluster.Lab, host: str) -> dict[str, int]:
    out = _run(lab, host, ["nft", "-j", "list", "counters", "table", "inet", TABLE])
    items = json.loads(out)["nftables"]
    return {c["counter"]["name"]: int(c["counter"]["packets"]) for c in items if "counter" in c}


def path_counts(lab: cluster.Lab) -> PathCounts:
    default = [_counters(lab, h) for h in DEFAULT_GATEWAYS]
    nat = [_counters(lab, h) for h in NAT_ROUTERS]
    return PathCounts(
        chosen_via_default=sum(c["chosen"] for c in default),
        chosen_via_nat=sum(c["chosen"] for c in nat),
        other_via_default=sum(c["other"] for c in default),
        other_via_nat=sum(c["other"] for c in nat),
    )


def connect_as(lab: cluster.Lab, host: str, user: str, dest: str, port: int, count: int,
               server_closes: bool = False, timeout: float = 600) -> dict:
    """``count`` TCP connections from ``host`` as ``user``: {"ok", "failed", "seen_as"}."""
    argv = ["runuser", "-u", user, "--", "/usr/bin/python3", "-I", str(TRAFFIC), "connect", dest, str(port),
            str(count)]
    out = _run(lab, host, [*argv, "--server-closes"] if server_closes else argv, timeout=timeout)
    return json.loads(out)


def leak_experiment(lab: cluster.Lab, node: str, chosen: tuple[str, str], others: tuple[str, str],
                    per_user: int) -> tuple[PathCounts, list[dict]]:
    """``per_user`` connections from ``node`` for each user: the chosen ones to labinet1 (the NAT
    path), the others to labfw1's wan address (the default path); the first of each pair closes
    first itself, the second lets the server close first. Counters reset before, read after;
    returns them and each user's connect result ({"user", "ok", "failed", "seen_as"})."""
    install_counters(lab)
    results = []
    for users, dest, port in ((chosen, INTERNET, CHOSEN_PORT), (others, FW_WAN, OTHER_PORT)):
        for user, server_closes in zip(users, (False, True), strict=True):
            got = connect_as(lab, node, user, dest, port, per_user, server_closes=server_closes)
            results.append({"user": user, **got})
    return path_counts(lab), results


def stream_as(lab: cluster.Lab, host: str, user: str, dest: str, port: int, seconds: float,
              interval: float = 0.01) -> str:
    """Start one long-lived flow in the background; returns the file its result will be in."""
    result = f"/tmp/{lab.prefix}-stream-{user}.json"
    stream = (f"runuser -u {user} -- /usr/bin/python3 -I {TRAFFIC} stream {dest} {port} {seconds} {interval} "
              f">{result}.tmp 2>&1 && mv {result}.tmp {result}")
    # A session of its own: it outlives the exec that started it (and its process group).
    _run(lab, host, ["sh", "-c", f"rm -f {result}; setsid sh -c '{stream}' </dev/null >/dev/null 2>&1 &"])
    return result


def stream_result(lab: cluster.Lab, host: str, result: str) -> dict | None:
    """The stream's JSON once it has finished, else None."""
    rc, out, _ = lab.exec(host, ["cat", result])
    return json.loads(out) if rc == 0 and out.strip() else None


def vip_holders(lab: cluster.Lab) -> list[str]:
    """The NAT routers that hold the gateway VIP now (one, unless a failover is under way)."""
    return [h for h in NAT_ROUTERS if NAT_VIP in lab.exec(h, ["ip", "-4", "addr", "show", "ib0"])[1]]


VRRP_CHILD = "$(pgrep -P $(cat /run/keepalived.pid))"  # keepalived's VRRP process, by its parent's pid


def vrrp_nice(lab: cluster.Lab, host: str) -> int:
    """The nice value keepalived's VRRP process runs at on ``host``."""
    return int(_run(lab, host, ["sh", "-c", f"ps -o ni= -p {VRRP_CHILD}"]).strip())


def stall_vrrp(lab: cluster.Lab, host: str, seconds: float) -> None:
    """Stop keepalived's VRRP process on ``host`` for ``seconds`` (a busy host that misses its
    adverts): the backup takes over, then gives the VIPs back when the adverts resume."""
    _run(lab, host, ["sh", "-c", f"p={VRRP_CHILD}; kill -STOP $p; sleep {seconds}; kill -CONT $p"])


def became_master(lab: cluster.Lab, host: str) -> int:
    """How many times keepalived on ``host`` became master (its SIGUSR2 statistics)."""
    stats = "/tmp/keepalived.stats"
    _run(lab, host, ["sh", "-c", f"rm -f {stats}; kill -USR2 $(cat /run/keepalived.pid)"])
    wait_until(lambda: lab.exec(host, ["test", "-s", stats])[0] == 0, 5)
    out = _run(lab, host, ["cat", stats])
    return sum(int(line.split(":")[1]) for line in out.splitlines() if line.strip().startswith("Became master:"))


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
