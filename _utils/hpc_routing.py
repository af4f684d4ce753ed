"""Policy routing as data (seed 003): named tables, fwmark and uidrange rules, the routes in our tables.

``plan(desired, actual)`` compares what the pillar wants with what the kernel has and
returns the changes, in the order they must be applied. Pure: no Salt, no I/O.

What we own: the tables the pillar declares (and those our rt_tables file still lists, so a
table dropped from the pillar is emptied), every route in them, and every rule that looks
up one of them. Everything else on the host is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hpc_change import Change
from hpc_types import expand

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

if TYPE_CHECKING:
    from hpc_schema import PolicyRouting

DEFAULT = "default"


@dataclass(frozen=True, order=True)
class Rule:
    """``lookup table`` for packets with ``fwmark`` (0: any mark) from sockets of uids in
    ``uids`` (a closed range; empty: any uid), from the source ``src`` (a CIDR; "": any). A rule
    is all identity: no settings."""

    priority: int
    fwmark: int
    table: int
    uids: tuple[int, ...] = ()  # () or (first, last)
    src: str = ""  # a NAT real server's return path (hpc_frontend_nat): from its address

    def __post_init__(self) -> None:
        object.__setattr__(self, "uids", tuple(self.uids))  # lists from YAML fixtures

    def key(self) -> tuple:
        return (self.priority, self.fwmark, self.table, self.uids, self.src)

    def as_data(self) -> dict:
        """A selector the rule does not use is left out (state output, plan cases)."""
        data = {"priority": self.priority, "fwmark": self.fwmark, "table": self.table}
        return data | ({"uids": list(self.uids)} if self.uids else {}) | ({"src": self.src} if self.src else {})


def uid_ranges(uids: list[int] | set[int]) -> list[tuple[int, int]]:
    """Sorted closed ranges covering exactly ``uids``: one uidrange rule each."""
    ranges: list[tuple[int, int]] = []
    for uid in sorted(set(uids)):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], uid)
        else:
            ranges.append((uid, uid))
    return ranges


@dataclass(frozen=True, order=True)
class Route:
    table: int
    dst: str  # "default" or a CIDR
    gateway: str | None = None
    dev: str | None = None

    def key(self) -> tuple:
        # identity: where the route leads from; gateway and device are settings (replaced in place)
        return (self.table, self.dst)


@dataclass(frozen=True)
class RoutingState:
    tables: dict[int, str] = field(default_factory=dict)  # our rt_tables entries
    rules: frozenset[Rule] = frozenset()
    routes: frozenset[Route] = frozenset()


def render(obj: Rule | Route) -> str:
    """The ``ip`` command line's words for a rule or route (for humans and state output)."""
    if isinstance(obj, Rule):
        words = [f"priority {obj.priority}"] + ([f"from {obj.src}"] if obj.src else [])
        if obj.fwmark:
            words.append(f"fwmark {obj.fwmark:#x}")
        if obj.uids:
            words.append(f"uidrange {obj.uids[0]}-{obj.uids[1]}")
        return " ".join(words + [f"lookup {obj.table}"])
    words = [obj.dst]
    if obj.gateway:
        words.append(f"via {obj.gateway}")
    if obj.dev:
        words.append(f"dev {obj.dev}")
    return " ".join(words + [f"table {obj.table}"])


def owned_tables(desired: RoutingState, actual: RoutingState) -> set[int]:
    return set(desired.tables) | set(actual.tables)


def plan(desired: RoutingState, actual: RoutingState) -> list[Change]:
    """Changes that turn actual into desired, inside what we own, in a safe order:
    routes before the rules that lead to them; rules removed before their routes.
    A route whose gateway or device changed is updated in place (``ip route replace``)."""
    ours = owned_tables(desired, actual)
    actual_rules = {r for r in actual.rules if r.table in ours}
    actual_routes = {r.key(): r for r in actual.routes if r.table in ours}
    wanted_routes = {r.key(): r for r in desired.routes}

    changes: list[Change] = []
    if desired.tables != actual.tables:
        changes.append(_tables_change(desired.tables, actual.tables))
    changes += [_rule("delete", r) for r in sorted(actual_rules - desired.rules)]
    for key, route in sorted(wanted_routes.items()):
        have = actual_routes.get(key)
        if have is None:
            changes.append(route_change("add", None, route))
        elif have != route:
            changes.append(route_change("update", have, route))
    changes += [route_change("delete", r, None) for k, r in sorted(actual_routes.items()) if k not in wanted_routes]
    changes += [_rule("add", r) for r in sorted(desired.rules - actual_rules)]
    return changes


def _tables_change(want: dict[int, str], have: dict[int, str]) -> Change:
    op = "add" if not have else "delete" if not want else "update"
    names = ", ".join(f"{i} {n}" for i, n in sorted(want.items())) or "(none)"
    return Change(op, "rt_tables", "hpcnet", old=dict(have) or None, new=dict(want) or None,
                  summary=f"rt_tables: {names}")


def _rule(op: str, rule: Rule) -> Change:
    text = render(rule)
    return Change(op, "rule", text, old=rule if op == "delete" else None, new=rule if op == "add" else None,
                  summary=text)


def route_change(op: str, old: Route | None, new: Route | None) -> Change:
    route = new or old
    assert route is not None
    return Change(op, "route", f"{route.dst} table {route.table}", old=old, new=new, summary=render(route))


def is_routed(host: str, section: PolicyRouting | None) -> bool:
    """This host takes part: the pillar declares tables, and its hosts (all when omitted) include it."""
    return bool(section and section.tables and (section.hosts is None or host in expand(section.hosts)))


def watched_interfaces(section: PolicyRouting) -> list[str]:
    """The interfaces our routes use (IB interfaces whose flaps drop them): what hpc_link watches."""
    return sorted({r.dev for r in section.routes if r is not None and r.dev})


def rt_tables_file(tables: dict[int, str]) -> str:
    lines = ["# Managed by Salt (hpcnet policy_routing): the routing tables it owns."]
    lines += [f"{tid}\t{name}" for tid, name in sorted(tables.items())]
    return "\n".join(lines) + "\n"


def parse_rt_tables(text: str) -> dict[int, str]:
    tables = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0].isdigit():
            tables[int(words[0])] = words[1]
    return tables


def spec(section: PolicyRouting | None, routed: bool) -> dict:
    """What a host's policy routing is made of, from the pillar, as plain data: the input every
    later re-apply starts from (hpc_applied). Accounts stay names: they are resolved at each apply,
    since group membership changes without a pillar edit (LDAP)."""
    if not routed or section is None:
        return {"routed": False, "tables": {}, "routes": [], "marks": []}
    tables = {t.name: t.id for t in section.tables if t is not None}
    return {
        "routed": True,
        "tables": tables,
        "routes": sorted(([tables[r.table], r.to, r.via, r.dev] for r in section.routes if r is not None),
                         key=lambda r: (r[0], r[1])),
        "marks": [{"name": m.name, "fwmark": m.fwmark, "priority": m.priority, "table": tables[m.table],
                   "users": list(m.users), "groups": list(m.groups)} for m in section.marks if m is not None],
    }


def state_as_data(state: RoutingState) -> dict:
    """A RoutingState as JSON-able data (kept by hpc_applied for the local heal)."""
    return {"tables": {str(i): n for i, n in sorted(state.tables.items())},
            "rules": [list(r.key()) for r in sorted(state.rules)],
            "routes": [[r.table, r.dst, r.gateway, r.dev] for r in sorted(state.routes, key=Route.key)]}


def state_from_data(data: dict) -> RoutingState:
    return RoutingState({int(i): n for i, n in data.get("tables", {}).items()},
                        frozenset(Rule(p, m, t, tuple(u), *src) for p, m, t, u, *src in data.get("rules", [])),
                        frozenset(Route(*r) for r in data.get("routes", [])))
