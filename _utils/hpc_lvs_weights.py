"""The weight each real server of the login pool gets, from the pillar and what is known now.

Inputs: the pillar's weights, the frontends the health probes call dead, those an operator is
draining, and each one's load factor (1.0: idle; smaller: busier). Rules, in order:

- a drained frontend gets 0: the operator asked, whatever else holds;
- a dead frontend gets 0, but **never more than half the pool is taken out automatically**
  (dead, drained and pillar-zero frontends count): if the probes call more dead, the rest keep
  their weight (the probe path is more likely broken than half the frontends), and the refusal
  is reported;
- a live frontend's weight is scaled by its load factor and never reaches 0 from load alone.

``weighted`` applies these rules to a director's IPVS table, service by service, with the real
servers known by address (what a director probes, and what its table holds).

Pure Python; no Salt dunders, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from hpc_ipvs import Table

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

SUBSYSTEM = "ipvs_overrides"  # its hpc_applied record on a director: health, drains, load


@dataclass(frozen=True)
class Weights:
    weights: dict[str, int]  # host -> the weight to set
    kept_despite_dead: tuple[str, ...] = ()  # called dead but kept in: half the pool is out already

    def problems(self) -> list[str]:
        if not self.kept_despite_dead:
            return []
        return [f"{', '.join(self.kept_despite_dead)}: probed dead but kept in the pool: "
                "no more than half of it is taken out automatically"]


def effective(pillar: Mapping[str, int], dead: Set[str] = frozenset(), drained: Set[str] = frozenset(),
              load: Mapping[str, float] | None = None) -> Weights:
    load = load or {}
    out = {host: 0 if host in drained else weight for host, weight in pillar.items()}
    out_already = sum(1 for w in out.values() if w == 0)
    room = max(0, len(pillar) // 2 - out_already)
    candidates = sorted(h for h in dead if h in out and out[h] > 0)
    taken, kept = candidates[:room], tuple(candidates[room:])
    for host in taken:
        out[host] = 0
    for host, factor in load.items():
        if out.get(host, 0) > 0:
            out[host] = max(1, round(out[host] * min(max(factor, 0.0), 1.0)))
    return Weights(out, kept)


@dataclass(frozen=True)
class Overrides:
    """What moves a director's weights away from the pillar's now, by real-server address.
    Kept on the director (``SUBSYSTEM``): a restart or a highstate keeps them."""

    dead: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # address -> {"since", "detail"}
    drained: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # address -> {"host", "since", ...}
    load: Mapping[str, float] = field(default_factory=dict)  # address -> load factor

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> Overrides:
        record = record or {}
        return cls(dict(record.get("dead", {})), dict(record.get("drained", {})), dict(record.get("load", {})))

    def as_record(self) -> dict[str, Any]:
        return {"dead": dict(self.dead), "drained": dict(self.drained), "load": dict(self.load)}

    def with_drain(self, host: str, addresses: list[str], since: float, timeout: float) -> Overrides:
        """``host``'s real servers drained: weight 0 now, removed once idle or after ``timeout``.
        A host drained again keeps its first start (its timeout counts from then)."""
        drained = dict(self.drained)
        for address in addresses:
            drained[address] = self.drained.get(address) or {
                "host": host, "since": since, "timeout": timeout, "removed": False}
        return dataclasses.replace(self, drained=drained)

    def without_drain(self, host: str) -> Overrides:
        return dataclasses.replace(self, drained={a: d for a, d in self.drained.items() if d.get("host") != host})

    def finish_drains(self, active: Mapping[str, int], now: float) -> Overrides:
        """Drains whose real servers have no active connection left (``active``: address -> count,
        this director's view), or whose timeout passed: marked removed (their real servers leave
        the table). An address this director does not serve counts as idle."""
        drained = {}
        for address, drain in self.drained.items():
            done = drain.get("removed") or active.get(address, 0) == 0 or now >= drain["since"] + drain["timeout"]
            drained[address] = {**drain, "removed": bool(done)}
        return dataclasses.replace(self, drained=drained)

    def removed(self) -> set[str]:
        return {a for a, d in self.drained.items() if d.get("removed")}

    def with_load(self, addresses: list[str], factor: float) -> Overrides:
        """The load factor of these real servers (1.0: none kept: the pillar's weight)."""
        load = {a: f for a, f in self.load.items() if a not in addresses}
        if factor < 1.0:
            load.update(dict.fromkeys(addresses, float(factor)))
        return dataclasses.replace(self, load=load)

    def with_health(self, address: str, up: bool, since: float, detail: str = "") -> Overrides:
        dead = {a: v for a, v in self.dead.items() if a != address}
        if not up:
            dead[address] = self.dead.get(address) or {"since": since, "detail": detail}
        return dataclasses.replace(self, dead=dead)


def weighted(table: Table, overrides: Overrides) -> tuple[Table, list[str]]:
    """``table`` with each service's real-server weights as ``effective`` says, without the
    real servers whose drain finished, and the refusals to report. Per service: the
    half-the-pool rule counts that service's pool."""
    reals, problems = [], []
    gone = overrides.removed()
    for svc in table.services:
        pool = table.reals_of(svc.key())
        got = effective({r.address: r.weight for r in pool}, set(overrides.dead), set(overrides.drained),
                        overrides.load)
        reals += [r._replace(weight=got.weights[r.address]) for r in pool if r.address not in gone]
        problems += [f"{svc.key()}: {p}" for p in got.problems()]
    return dataclasses.replace(table, reals=tuple(reals)), problems


def active_by_address(table: Table, local: Set[str] | None = None) -> dict[str, int]:
    """Active connections per real-server address, over the services of ``table`` whose VIP is
    one of ``local`` (this director's addresses; None: every service; fwmark services always).
    A director that does not hold a VIP forwards none of its traffic: the connections it shows
    there are the sync daemon's copies, which stay "active" until their 15-minute timeout even
    after the session closed (seen in the lab: a drain waited for them)."""
    held = {s.key() for s in table.services if local is None or not s.address or s.address in local}
    out: dict[str, int] = {}
    for real in table.reals:
        if real.service not in held:
            out.setdefault(real.address, 0)
            continue
        conns = table.conns.get(real.key())
        out[real.address] = out.get(real.address, 0) + (conns.active if conns else 0)
    return out
