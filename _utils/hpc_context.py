"""One pillar context per run: the pillar validated once, and what this host takes part in.

Every execution module and every ``map.jinja`` reads the pillar through here. ``cached`` keeps
the context in Salt's ``__context__`` (one dict per loader: one per state run), keyed by a
digest of the pillar, so a highstate validates the pillar once however many modules and
templates ask, and a changed pillar (``saltutil.refresh_pillar``, ``pillar=`` on the CLI) is
validated again. Memberships are computed from the pillar alone: no kernel, NSS or network
reads, so rendering a highstate costs the same on every host.

Pure apart from the clock and one DEBUG log line per validation (the scale bench counts them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import hpc_frontend
import hpc_frontend_nat
import hpc_keepalived
import hpc_natrouter
import hpc_routing
from hpc_checks import check_and_expand
from hpc_inventory import Host
from hpc_schema import PillarError, PillarInvalid, parse_sections
from hpc_types import expand

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

log = logging.getLogger("hpc_context")
CONTEXT_KEY = "hpc_context"


@dataclass(frozen=True)
class Context:
    """The pillar as one minion sees it in one run."""

    minion: str
    digest: str
    errors: tuple[PillarError, ...]
    sections: dict[str, Any]  # what parsed (an item that failed is None)
    inventory: dict[str, Host]
    member: dict[str, Any] = field(default_factory=dict)  # subsystem -> this host's part (empty when invalid)

    @property
    def declared(self) -> bool:
        return self.minion in self.inventory

    @property
    def valid(self) -> bool:
        """The pillar has no error and declares this minion."""
        return not self.errors and self.declared

    def mistakes(self) -> list[str]:
        """Every error of the pillar, then whether it forgets this minion: what the gate reports."""
        lines = [str(e) for e in self.errors]
        if not lines and not self.declared:
            lines.append(str(PillarError("nodes", f"minion {self.minion} is not declared in any nodeset",
                                         self.minion)))
        return lines

    @property
    def host(self) -> Host | None:
        return self.inventory.get(self.minion)

    def require_valid(self, error: type[Exception]) -> Context:
        """This context, or ``error`` (the modules' CommandExecutionError) listing every mistake."""
        if self.errors:
            raise error(f"invalid pillar:\n{PillarInvalid(list(self.errors))}")
        return self

    def as_data(self) -> dict[str, Any]:
        """What ``map.jinja`` files see: plain data, small whatever the inventory's size."""
        host = self.host
        return {
            "valid": self.valid,
            "errors": self.mistakes(),
            "minion": self.minion,
            "role": host.role if host else None,
            "interfaces": {net: {"name": i.name, "ip": i.ip, "mac": i.mac}
                           for net, i in (host.interfaces.items() if host else ())},
            "member": json.loads(json.dumps(self.member)),  # a copy: templates may merge into it
        }


def digest(pillar: Any) -> str:
    """A stable digest of the pillar's content (key order does not matter)."""
    text = json.dumps(pillar, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def build(pillar: Any, minion: str, pillar_digest: str | None = None) -> Context:
    """Parse and check the pillar once; this host's memberships when it is valid."""
    started = time.monotonic()
    pillar_digest = pillar_digest or digest(pillar)
    if not isinstance(pillar, dict):
        return Context(minion, pillar_digest, (PillarError("(pillar)", "must be a mapping", pillar),), {}, {})
    parsed = parse_sections(pillar)
    cross_errors, inventory = check_and_expand(parsed)
    errors = parsed.errors + cross_errors
    member = {} if errors or minion not in inventory else memberships(minion, parsed.sections)
    log.debug("hpc: validated the pillar (sha256 %s) for %s in %.3f s: %d error(s)",
              pillar_digest[:12], minion, time.monotonic() - started, len(errors))
    return Context(minion, pillar_digest, tuple(errors), parsed.sections, inventory, member)


def memberships(minion: str, sections: dict[str, Any]) -> dict[str, Any]:
    """Each subsystem's answer to "does this host take part, and how", from a valid pillar."""
    lvs, fe, dl = sections["lvs"], sections.get("frontend"), sections["diskless"]
    routing = sections["policy_routing"]
    routed = hpc_routing.is_routed(minion, routing)
    return {
        "node": True,
        "keepalived": [i.name for i in hpc_keepalived.instances_of(minion, sections["keepalived"])],
        "director": bool(lvs.directors) and minion in expand(lvs.directors),
        # NAT: the directors forward the real servers' replies (and translate them back)
        "director_forwards": bool(lvs.directors) and minion in expand(lvs.directors)
        and any(svc.forward == "nat" for svc in lvs.services),
        "frontend": fe is not None and minion in expand(fe.hosts),
        "dr_vips": hpc_frontend.dr_vips(minion, lvs),  # a direct-routing real server holds these on lo
        "nat_return": hpc_frontend_nat.nat_services(minion, lvs),  # NAT services whose replies it routes back
        "lvs_real_server": any(r.host == minion for svc in lvs.services for r in svc.real_servers),
        "boot_server": dl.server == minion,
        "natrouter": hpc_natrouter.is_router(minion, sections.get("natrouter")),
        "policy_routing": routed,
        "watched_interfaces": hpc_routing.watched_interfaces(routing) if routed else [],
    }


def load(store: dict, pillar: Any, opts: dict, error: type[Exception] | None = None) -> Context:
    """What an execution module calls: ``load(__context__, __pillar__, __opts__, CommandExecutionError)``.
    With ``error``, a bad pillar raises it listing every mistake."""
    ctx = cached(store, dict(pillar), opts["id"])
    return ctx.require_valid(error) if error else ctx


def cached(store: dict, pillar: Any, minion: str) -> Context:
    """The context of ``pillar`` for ``minion``, built once per run and kept in ``store``
    (Salt's ``__context__``); built again when the pillar or the minion id differ."""
    pillar_digest = digest(pillar)
    ctx = store.get(CONTEXT_KEY)
    if isinstance(ctx, Context) and ctx.digest == pillar_digest and ctx.minion == minion:
        return ctx
    ctx = build(pillar, minion, pillar_digest)
    store[CONTEXT_KEY] = ctx
    return ctx
