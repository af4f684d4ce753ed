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

    def with_health(self, address: str, up: bool, since: float, detail: str = "") -> Overrides:
        dead = {a: v for a, v in self.dead.items() if a != address}
        if not up:
            dead[address] = self.dead.get(address) or {"since": since, "detail": detail}
        return dataclasses.replace(self, dead=dead)


def weighted(table: Table, overrides: Overrides) -> tuple[Table, list[str]]:
    """``table`` with each service's real-server weights as ``effective`` says, and the
    refusals to report. Per service: the half-the-pool rule counts that service's pool."""
    reals, problems = [], []
    for svc in table.services:
        pool = table.reals_of(svc.key())
        got = effective({r.address: r.weight for r in pool}, set(overrides.dead), set(overrides.drained),
                        overrides.load)
        reals += [dataclasses.replace(r, weight=got.weights[r.address]) for r in pool]
        problems += [f"{svc.key()}: {p}" for p in got.problems()]
    return dataclasses.replace(table, reals=tuple(reals)), problems
