"""The IPVS table of a director: the model, what the pillar wants, and the plan between them.

A virtual ``Service`` is known by its protocol and VIP:port (or its firewall mark); everything
else about it (scheduler, persistence and its netmask, flags) is a setting, edited in place.
A ``RealServer`` is known by its service and address:port; its forwarding method and weight are
settings. An in-place edit keeps the connections IPVS tracks; a delete drops them, so the plan
deletes only what the pillar no longer asks for, and only in services we own: the pillar's
services, and those the last apply recorded (a service the pillar dropped). A service made by
hand on another VIP is not ours: never read as drift, never touched.

Pure Python: ``desired`` builds the table from the pillar, ``plan`` compares; the kernel side
(read, apply) is ``hpc_ipvs_netlink``. No Salt dunders, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from hpc_change import Change
from hpc_inventory import Host
from hpc_schema import Lvs, LvsService
from hpc_types import expand

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

SUBSYSTEM = "ipvs"  # its hpc_applied record: the table applied and the services we own
PROTOCOLS = ("tcp", "udp", "fwmark")
FORWARDS = ("nat", "dr", "tun")
# ipvsadm's one-letter options, for the text form (ipvsadm -S -n)
_PROTO_OPT = {"tcp": "-t", "udp": "-u", "fwmark": "-f"}
_FORWARD_OPT = {"nat": "-m", "dr": "-g", "tun": "-i"}
# The keys, as format strings: the kernel side (hpc_ipvs_kernel.parse_proc) maps them over 10,000
# real servers in C and must write exactly what key() writes.
SERVICE_KEY = "{} {}:{}".format  # protocol, address, port
FWMARK_KEY = "fwmark {}".format
REAL_KEY = "{} -> {}:{}".format  # service key, address, port


class Service(NamedTuple):
    """A tuple, as RealServer (below): a read of 1,000 services makes and compares them in C."""

    protocol: str  # tcp, udp or fwmark
    address: str = ""  # the VIP ("" for a fwmark service)
    port: int = 0
    fwmark: int = 0
    scheduler: str = "wlc"
    persistence: int = 0  # seconds; 0: none
    netmask: int = 32  # persistence granularity (prefix length)
    flags: tuple[str, ...] = ()  # sorted names, hpc_schema.IPVS_FLAGS

    def key(self) -> str:
        if self.protocol == "fwmark":
            return FWMARK_KEY(self.fwmark)
        return SERVICE_KEY(self.protocol, self.address, self.port)

    def text(self) -> str:
        """The service as ``ipvsadm -S -n`` writes it."""
        where = str(self.fwmark) if self.protocol == "fwmark" else f"{self.address}:{self.port}"
        words = [f"-A {_PROTO_OPT[self.protocol]} {where} -s {self.scheduler}"]
        sched_flags = [f for f in self.flags if f != "ops"]
        if sched_flags:
            words.append(f"-b {','.join(sched_flags)}")
        if "ops" in self.flags:
            words.append("-o")  # one-packet scheduling is an option of its own in ipvsadm
        if self.persistence:
            words.append(f"-p {self.persistence}")
            if self.netmask != 32:
                words.append(f"-M {prefix_to_netmask(self.netmask)}")
        return " ".join(words)

    def as_data(self) -> str:
        return self.text()


class RealServer(NamedTuple):
    """A tuple, not a dataclass: a read makes one per real server (10,000 in the sync bench), and a
    tuple is made, compared and sorted in C (measured in a TCG director: a third of a no-op sync
    went to making and comparing frozen dataclasses)."""

    service: str  # Service.key()
    address: str
    port: int  # 0 for a fwmark service's real server: the packet's own port
    forward: str = "dr"  # nat, dr or tun
    weight: int = 1

    def key(self) -> str:
        return REAL_KEY(self.service, self.address, self.port)

    def text(self) -> str:
        proto, _, where = self.service.partition(" ")
        return (f"-a {_PROTO_OPT[proto]} {where} -r {self.address}:{self.port} "
                f"{_FORWARD_OPT.get(self.forward, '-g')} -w {self.weight}")  # the kernel's own "local": as ipvsadm, -g

    def as_data(self) -> str:
        return self.text()


class Conns(NamedTuple):
    """A real server's connection counters, as the kernel reports them (never part of a plan)."""

    active: int = 0
    inactive: int = 0


class LazyConns(Mapping[str, Conns]):
    """RealServer.key() -> counters, made on first use: a sync never looks at them, and making
    10,000 of them was a fifth of a no-op sync in a TCG director."""

    def __init__(self, make: Callable[[], dict[str, Conns]]) -> None:
        self._make: Callable[[], dict[str, Conns]] | None = make
        self._made: dict[str, Conns] = {}

    def _counters(self) -> dict[str, Conns]:
        if self._make is not None:
            self._made, self._make = self._make(), None
        return self._made

    def __getitem__(self, key: str) -> Conns:
        return self._counters()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._counters())

    def __len__(self) -> int:
        return len(self._counters())


@dataclass(frozen=True)
class SyncDaemon:
    """IPVS connection sync: a ``master`` sends this director's connections, a ``backup`` receives
    the other's (multicast on ``interface``). Both run on both directors, so whichever holds the
    VIP sends and the other keeps a copy: an open session survives a failover and a failback."""

    state: str  # master or backup
    interface: str
    sync_id: int = 0
    maxlen: int | None = None  # sync message size cap; None: the kernel's (from the MTU)

    def key(self) -> str:
        return f"{self.state} sync daemon"

    def text(self) -> str:
        text = f"--start-daemon {self.state} --mcast-interface {self.interface} --syncid {self.sync_id}"
        return text + (f" --sync-maxlen {self.maxlen}" if self.maxlen is not None else "")

    def satisfies(self, want: SyncDaemon) -> bool:
        """This running daemon is what ``want`` asks (a maxlen it leaves to the kernel matches any)."""
        return dataclasses.replace(self, maxlen=want.maxlen if want.maxlen is None else self.maxlen) == want

    def as_data(self) -> str:
        return self.text()


@dataclass(frozen=True)
class Table:
    services: tuple[Service, ...] = ()
    reals: tuple[RealServer, ...] = ()
    conns: Mapping[str, Conns] = field(default_factory=dict, compare=False)  # RealServer.key() -> counters
    daemons: tuple[SyncDaemon, ...] = ()

    def __post_init__(self) -> None:
        # The kernel dumps in hash order: a table is the same whatever order it was read in.
        object.__setattr__(self, "services", tuple(sorted(self.services, key=Service.key)))
        object.__setattr__(self, "reals", tuple(sorted(self.reals)))  # tuples: sorted in C
        object.__setattr__(self, "daemons", tuple(sorted(self.daemons, key=SyncDaemon.key)))

    def service(self, key: str) -> Service | None:
        return next((s for s in self.services if s.key() == key), None)

    def reals_of(self, key: str) -> list[RealServer]:
        return [r for r in self.reals if r.service == key]

    def text(self) -> str:
        """The table as ``ipvsadm -S -n`` writes it: each service, then its real servers."""
        lines = [d.text() for d in self.daemons]
        for svc in self.services:
            lines.append(svc.text())
            lines += [r.text() for r in self.reals_of(svc.key())]
        return "\n".join(lines)

    def only(self, keys: Iterable[str]) -> Table:
        """The part of the table made of these services (and their real servers)."""
        keep = set(keys)
        return Table(tuple(s for s in self.services if s.key() in keep),
                     tuple(r for r in self.reals if r.service in keep),
                     {k: c for k, c in self.conns.items() if k.split(" -> ")[0] in keep}, self.daemons)


def prefix_to_netmask(prefix: int) -> str:
    value = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return ".".join(str((value >> s) & 0xFF) for s in (24, 16, 8, 0))


# ---------------------------------------------------------------- desired state from the pillar


def is_director(host: str, lvs: Lvs) -> bool:
    return bool(lvs.directors) and host in expand(lvs.directors)


def service_of(svc: LvsService) -> Service:
    if svc.protocol == "fwmark":
        return Service("fwmark", fwmark=svc.fwmark or 0, scheduler=svc.scheduler, persistence=svc.persistence,
                       netmask=svc.persistence_netmask, flags=tuple(sorted(svc.flags)))
    return Service(svc.protocol, svc.vip, svc.port, scheduler=svc.scheduler, persistence=svc.persistence,
                   netmask=svc.persistence_netmask, flags=tuple(sorted(svc.flags)))


def desired(lvs: Lvs, inventory: Mapping[str, Host], weights: Mapping[str, int] | None = None,
            host: Host | None = None) -> Table:
    """Every pillar service with its real servers, and ``host``'s sync daemons (a director's).
    ``weights``: host -> the weight it has now (drained, dead, or reweighted by load), in place
    of the pillar's in every service."""
    weights = weights or {}
    services, reals = [], []
    for svc in lvs.services:
        service = service_of(svc)
        services.append(service)
        for real in svc.real_servers:
            address = inventory[real.host].interfaces[svc.reals_on].ip
            port = real.port or (0 if svc.protocol == "fwmark" else svc.port)
            reals.append(RealServer(service.key(), address, port, svc.forward, weights.get(real.host, real.weight)))
    return Table(tuple(services), tuple(reals), daemons=tuple(sync_daemons(lvs, host)) if host else ())


def sync_daemons(lvs: Lvs, host: Host) -> list[SyncDaemon]:
    """Both sync daemons on every director, on its interface of ``lvs.sync.network``."""
    if lvs.sync is None:
        return []
    iface = host.interfaces[lvs.sync.network].name
    # The master's messages capped at one entry each: a new connection leaves ~20 ms after its 3rd
    # packet instead of waiting up to 3 s for a full buffer (the kernel's 2 s flush). A backup's
    # receive buffer is the kernel's (it raises any cap below 1024).
    return [SyncDaemon("backup", iface, lvs.sync.sync_id),
            SyncDaemon("master", iface, lvs.sync.sync_id, lvs.sync.maxlen)]


def kernel_modules(table: Table) -> list[str]:
    """IPVS and the schedulers the table's services use, in order, once each."""
    return list(dict.fromkeys(["ip_vs"] + [f"ip_vs_{svc.scheduler}" for svc in table.services]))


# ---------------------------------------------------------------- the plan


def plan(want: Table, have: Table, owned: Iterable[str] = ()) -> list[Change]:
    """The steps from ``have`` to ``want``: services first (so real servers have one), then real
    servers added, edited, removed, then services we own and no longer want. ``owned``: keys of
    services the last apply made (the pillar's services are ours too). A deleted service takes
    its real servers with it, so they get no steps of their own."""
    wanted = {s.key(): s for s in want.services}
    ours = set(wanted) | set(owned)
    present = {key: s for s in have.services if (key := s.key()) in ours}
    steps = [_step(key, present.get(key), svc, "service") for key, svc in wanted.items()]
    # Real servers as whole tuples in sets: what is not in both is what changes, found in C (a
    # no-op plan of 10,000 servers compares no objects in Python). Sorted: the tables' order.
    want_reals, have_reals = set(want.reals), set(have.reals)
    to_write = sorted(want_reals - have_reals)
    stale = sorted(r for r in have_reals - want_reals if r.service in wanted)
    old_of = {r[:3]: r for r in stale}  # (service, address, port): the key, as a tuple
    steps += [_step(real.key(), old_of.get(real[:3]), real, "real server") for real in to_write]
    rewritten = {r[:3] for r in to_write}
    steps += [Change("delete", "real server", real.key(), old=real, summary=real.text())
              for real in stale if real[:3] not in rewritten]
    steps += [Change("delete", "service", key, old=svc, summary=svc.text())
              for key, svc in present.items() if key not in wanted]
    return [s for s in steps if s is not None] + _daemon_steps(want.daemons, have.daemons)


def _daemon_steps(want: tuple[SyncDaemon, ...], have: tuple[SyncDaemon, ...]) -> list[Change]:
    """The kernel cannot edit a running sync daemon: another interface or sync id is a stop and
    a start (no connection is lost: the table stays, only its copying pauses). A daemon only runs
    on a director, and only ours does (the pillar's ``lvs.sync``): one the pillar no longer
    asks for is stopped."""
    wanted, running = {d.key(): d for d in want}, {d.key(): d for d in have}
    stale = {k for k, d in running.items() if k not in wanted or not d.satisfies(wanted[k])}
    steps = [Change("delete", "sync daemon", k, old=running[k], summary=running[k].text()) for k in sorted(stale)]
    return steps + [Change("add", "sync daemon", k, new=d, summary=d.text())
                    for k, d in wanted.items() if k not in running or k in stale]


def _step(key: str, old: Service | RealServer | None, new: Service | RealServer, kind: str) -> Change | None:
    if old == new:
        return None
    return Change("add" if old is None else "update", kind, key, old=old, new=new, summary=new.text())


# ---------------------------------------------------------------- ipvsadm's save format


_OPT_PROTO = {v: k for k, v in _PROTO_OPT.items()}
_OPT_FORWARD = {v: k for k, v in _FORWARD_OPT.items()}


def netmask_to_prefix(netmask: str) -> int:
    value = int.from_bytes(bytes(int(p) for p in netmask.split(".")), "big")
    return bin(value).count("1")


def _split_where(protocol: str, where: str) -> dict:
    if protocol == "fwmark":
        return {"fwmark": int(where)}
    address, _, port = where.rpartition(":")
    return {"address": address, "port": int(port)}


_NO_ARGUMENT = {"-A", "-a", "-g", "-m", "-i", "-o"}


def _options(line: str) -> dict[str, str]:
    """``-A -t 10.0.0.1:22 -s wlc -p 600`` -> {"-A": "", "-t": "10.0.0.1:22", "-s": "wlc", "-p": "600"}."""
    words, out, i = line.split(), {}, 0
    while i < len(words):
        word = words[i]
        if not word.startswith("-"):
            raise ValueError(f"not an ipvsadm -S line: {line!r}")
        if word in _NO_ARGUMENT:
            out[word], i = "", i + 1
        elif i + 1 < len(words):
            out[word], i = words[i + 1], i + 2
        else:
            raise ValueError(f"{word} needs a value: {line!r}")
    return out


def _flags(opts: dict[str, str]) -> tuple[str, ...]:
    names = opts["-b"].split(",") if "-b" in opts else []
    return tuple(sorted(names + (["ops"] if "-o" in opts else [])))


def parse_rules(text: str) -> Table:
    """A table from ``ipvsadm -S -n`` output (or the same lines written by hand): the plan cases'
    notation, and a check of our text against real ipvsadm. Raises ValueError on a line it
    does not understand."""
    services: list[Service] = []
    reals: list[RealServer] = []
    daemons: list[SyncDaemon] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        opts = _options(line)
        if "--start-daemon" in opts:
            maxlen = opts.get("--sync-maxlen")
            daemons.append(SyncDaemon(opts["--start-daemon"], opts.get("--mcast-interface", ""),
                                      int(opts.get("--syncid", 0)), int(maxlen) if maxlen else None))
            continue
        proto_opt = next((o for o in opts if o in _OPT_PROTO), None)
        if proto_opt is None or ("-A" in opts) == ("-a" in opts):
            raise ValueError(f"not an ipvsadm -S line: {line!r}")
        protocol = _OPT_PROTO[proto_opt]
        where = _split_where(protocol, opts[proto_opt])
        if "-A" in opts:
            services.append(Service(protocol, **where, scheduler=opts.get("-s", "wlc"),
                                    persistence=int(opts.get("-p", 0)),
                                    netmask=netmask_to_prefix(opts["-M"]) if "-M" in opts else 32,
                                    flags=_flags(opts)))
        else:
            address, _, port = opts["-r"].rpartition(":")
            forward = next((f for o, f in _OPT_FORWARD.items() if o in opts), "dr")
            reals.append(RealServer(Service(protocol, **where).key(), address or opts["-r"], int(port or 0),
                                    forward, int(opts.get("-w", 1))))
    return Table(tuple(services), tuple(reals), daemons=tuple(daemons))
