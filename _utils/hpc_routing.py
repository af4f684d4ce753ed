"""Policy routing as data (seed 003): named tables, fwmark and uidrange rules, the routes in our tables.

``plan(desired, actual)`` compares what the pillar wants with what the kernel has and
returns the changes, in the order they must be applied. Pure: no Salt, no I/O.

What we own: the tables the pillar declares (and those our rt_tables file still lists, so a
table dropped from the pillar is emptied), every route in them, and every rule that looks
up one of them. Everything else on the host is left alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

DEFAULT = "default"


@dataclass(frozen=True, order=True)
class Rule:
    """``lookup table`` for packets with ``fwmark`` (0: any mark) from sockets of uids in
    ``uids`` (a closed range; empty: any uid). A rule is all identity: no settings."""

    priority: int
    fwmark: int
    table: int
    uids: tuple[int, ...] = ()  # () or (first, last)

    def __post_init__(self) -> None:
        object.__setattr__(self, "uids", tuple(self.uids))  # lists from YAML fixtures

    def key(self) -> tuple:
        return (self.priority, self.fwmark, self.table, self.uids)


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


@dataclass(frozen=True)
class Change:
    action: str  # add | replace | delete | write
    kind: str  # table | rule | route
    target: Rule | Route | dict

    def describe(self) -> str:
        if self.kind == "table":
            names = ", ".join(f"{i} {n}" for i, n in sorted(self.target.items()))
            return f"{self.action} rt_tables: {names or '(none)'}"
        return f"{self.action} {self.kind} {render(self.target)}"


def render(obj: Rule | Route) -> str:
    """The ``ip`` command line's words for a rule or route (for humans and state output)."""
    if isinstance(obj, Rule):
        words = [f"priority {obj.priority}"]
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
    routes before the rules that lead to them; rules removed before their routes."""
    ours = owned_tables(desired, actual)
    actual_rules = {r for r in actual.rules if r.table in ours}
    actual_routes = {r.key(): r for r in actual.routes if r.table in ours}
    wanted_routes = {r.key(): r for r in desired.routes}

    changes: list[Change] = []
    if desired.tables != actual.tables:
        changes.append(Change("write", "table", dict(desired.tables)))
    changes += [Change("delete", "rule", r) for r in sorted(actual_rules - desired.rules)]
    for key, route in sorted(wanted_routes.items()):
        have = actual_routes.get(key)
        if have is None:
            changes.append(Change("add", "route", route))
        elif have != route:
            changes.append(Change("replace", "route", route))
    changes += [Change("delete", "route", r) for k, r in sorted(actual_routes.items()) if k not in wanted_routes]
    changes += [Change("add", "rule", r) for r in sorted(desired.rules - actual_rules)]
    return changes


def as_data(changes: list[Change]) -> list[dict]:
    """Changes as plain data (state output, test fixtures)."""
    out = []
    for change in changes:
        target = change.target if isinstance(change.target, dict) else asdict(change.target)
        if isinstance(change.target, Rule):  # a selector a rule does not use is left out
            target = {k: list(v) if k == "uids" else v for k, v in target.items() if v or k != "uids"}
        out.append({"action": change.action, "kind": change.kind, "target": target})
    return out


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
