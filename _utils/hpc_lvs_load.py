"""From the frontends' load to a weight factor, on the master (issue 11, point 5).

Each frontend's ``hpc_frontend_load`` beacon reports its 1-minute load average per core; the
master's reactor (hpc_react.lvs_load) keeps a ``Reweigher`` and asks the directors to change a
frontend's weight only when this says so:

- **smoothing**: an exponential average of the reports (``smoothing`` is the newest one's share;
  the kernel's load average is already a 1-minute average, this damps its steps further);
- **policy**: factor 1.0 up to ``low`` load per core, ``min_factor`` from ``high`` on, linear in
  between; never 0 (only health and drains take a frontend out);
- **dead-band**: a factor that moved by less than ``deadband`` is left alone, except to reach
  either end (so an idle frontend does get its whole weight back);
- **rate limit**: one change per frontend per ``min_interval`` seconds at most.

Pure Python; no Salt dunders, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")


@dataclass(frozen=True)
class Policy:
    low: float = 0.5
    high: float = 2.0
    min_factor: float = 0.1
    smoothing: float = 0.5
    deadband: float = 0.1
    min_interval: float = 30.0

    @classmethod
    def from_pillar(cls, load: Any) -> Policy:
        """From the ``lvs.load`` section (hpc_schema.LvsLoad, or its dict)."""
        get = load.get if isinstance(load, dict) else lambda k, d: getattr(load, k, d)
        return cls(**{k: float(get(k, getattr(cls, k))) for k in cls.__dataclass_fields__})

    def factor(self, per_core: float) -> float:
        """The weight factor for a load per core, rounded to 0.01."""
        if per_core <= self.low:
            return 1.0
        if per_core >= self.high:
            return self.min_factor
        span = (per_core - self.low) / (self.high - self.low)
        return round(1.0 - span * (1.0 - self.min_factor), 2)


@dataclass
class _Frontend:
    smoothed: float | None = None
    # What the directors were last asked to use; None: not known since this master started (they
    # keep a factor in their record), so the first report sets it whatever it is.
    applied: float | None = None
    changed_at: float = -math.inf


@dataclass
class Reweigher:
    """The master's memory of each frontend's load (lost on a master restart: the first report
    after it starts from scratch, and the directors' own record keeps the factor they have)."""

    policy: Policy
    frontends: dict[str, _Frontend] = field(default_factory=dict)

    def observe(self, host: str, per_core: float, now: float) -> float | None:
        """The factor to apply now for ``host`` after this report, or None: leave it."""
        state = self.frontends.setdefault(host, _Frontend())
        alpha = self.policy.smoothing
        state.smoothed = per_core if state.smoothed is None else alpha * per_core + (1 - alpha) * state.smoothed
        target = self.policy.factor(state.smoothed)
        if target == state.applied:
            return None
        at_an_end = target in (1.0, self.policy.min_factor)
        if state.applied is not None and abs(target - state.applied) < self.policy.deadband and not at_an_end:
            return None
        if now - state.changed_at < self.policy.min_interval:
            return None
        state.applied, state.changed_at = target, now
        return target

    def smoothed(self, host: str) -> float | None:
        state = self.frontends.get(host)
        return state.smoothed if state else None
