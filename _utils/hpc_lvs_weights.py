"""The weight each real server of the login pool gets, from the pillar and what is known now.

Inputs: the pillar's weights, the frontends the health probes call dead, those an operator is
draining, and each one's load factor (1.0: idle; smaller: busier). Rules, in order:

- a drained frontend gets 0: the operator asked, whatever else holds;
- a dead frontend gets 0, but **never more than half the pool is taken out automatically**
  (dead, drained and pillar-zero frontends count): if the probes call more dead, the rest keep
  their weight (the probe path is more likely broken than half the frontends), and the refusal
  is reported;
- a live frontend's weight is scaled by its load factor and never reaches 0 from load alone.

Pure Python; no Salt dunders, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass


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
