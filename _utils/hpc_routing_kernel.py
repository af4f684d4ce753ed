"""The kernel side of policy routing: a small handle over netlink (pyroute2), and a fake.

``NetlinkRouting`` and ``FakeRouting`` offer the same operations; one test suite runs against
both (the real one in a throwaway network namespace). Parsing netlink messages into the model
is kept apart (``parse_rule``, ``parse_route``) and tested from recorded messages.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import hpc_applied
import hpc_rtnl
from hpc_change import Change
from hpc_routing import (
    DEFAULT,
    Route,
    RoutingState,
    Rule,
    parse_rt_tables,
    route_change,
    rt_tables_file,
    state_from_data,
)

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

RT_TABLES_FILE = Path("/etc/iproute2/rt_tables.d/hpcnet.conf")
LOCK = "/run/hpcnet-policy-routing.lock"  # every apply of policy routing on a host holds it
SUBSYSTEM = "policy_routing"  # its hpc_applied record
SCOPE_LINK = 253
RTN_UNICAST = 1
FR_ACT_TO_TBL = 1


class RoutingHandle(Protocol):
    def read(self, tables: set[int]) -> RoutingState: ...
    def add_rule(self, rule: Rule) -> None: ...
    def delete_rule(self, rule: Rule) -> None: ...
    def set_route(self, route: Route, replace: bool) -> None: ...
    def add_routes(self, routes: list[Route]) -> list[Exception | None]: ...
    def delete_route(self, route: Route) -> None: ...
    def write_tables(self, tables: dict[int, str]) -> None: ...
    def close(self) -> None: ...


# Selectors a rule of ours never uses: a rule with any of them is not one we model.
FOREIGN_SELECTORS = ("FRA_DST", "FRA_IIFNAME", "FRA_OIFNAME", "FRA_IP_PROTO", "FRA_SPORT_RANGE",
                     "FRA_DPORT_RANGE", "FRA_L3MDEV")
UNSET = 0xFFFFFFFF  # the kernel reports FRA_SUPPRESS_PREFIXLEN -1 on every rule that has none


def parse_rule(msg: Any) -> Rule | None:
    """A ``[from A/N] [fwmark M] [uidrange A-B] lookup table`` rule, or None for any other kind (not
    ours to model)."""
    fwmark, uid_range, src = msg.get("FRA_FWMARK"), msg.get("FRA_UID_RANGE"), msg.get("FRA_SRC")
    if msg["action"] != FR_ACT_TO_TBL or (fwmark is None and uid_range is None and src is None):
        return None
    if msg.get("FRA_FWMASK") not in (None, UNSET) or msg.get("FRA_SUPPRESS_PREFIXLEN") not in (None, UNSET):
        return None
    if any(msg.get(nla) is not None for nla in FOREIGN_SELECTORS):
        return None
    uids = tuple(int(u) for u in uid_range.split(":")) if uid_range else ()
    table = msg.get("FRA_TABLE") or msg["table"]
    return Rule(priority=msg.get("FRA_PRIORITY") or 0, fwmark=fwmark or 0, table=table, uids=uids,
                src=f"{src}/{msg['src_len']}" if src is not None else "")


def parse_route(msg: Any, ifnames: dict[int, str]) -> Route | None:
    if msg["type"] != RTN_UNICAST:
        return None
    dst = DEFAULT if msg["dst_len"] == 0 else f"{msg.get('RTA_DST')}/{msg['dst_len']}"
    oif = msg.get("RTA_OIF")
    table = msg.get("RTA_TABLE") or msg["table"]
    return Route(table=table, dst=dst, gateway=msg.get("RTA_GATEWAY"), dev=ifnames.get(oif) if oif else None)


@contextlib.contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """pyroute2's NetlinkError as the OSError the fake raises for the same mistake: EEXIST ->
    FileExistsError, ENOENT/ESRCH (no such rule or route) -> FileNotFoundError."""
    try:
        yield
    except OSError:
        raise
    except Exception as exc:
        code = getattr(exc, "code", None)
        if not isinstance(code, int):
            raise
        code = {3: 2}.get(code, code)  # ESRCH: what the kernel says of a missing route
        raise OSError(code, f"{os.strerror(code)}: {what}") from exc


class NetlinkRouting:
    """The real kernel, through one pyroute2 IPRoute socket of the current network namespace."""

    def __init__(self, rt_tables: Path = RT_TABLES_FILE, ipr: Any = None) -> None:
        """``ipr``: an IPRoute-like socket (e.g. pyroute2 ``NetNS(name)`` in tests); default: this netns."""
        self.own_netns = ipr is None  # this process's netns: interface names resolve locally
        self._ipr = ipr
        self.rt_tables = rt_tables

    @property
    def ipr(self) -> Any:
        """pyroute2's socket, opened on first use: the local heal (add_routes in this netns)
        never needs it."""
        if self._ipr is None:
            from pyroute2 import IPRoute  # imported here so the fake needs no pyroute2

            self._ipr = IPRoute()
        return self._ipr

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()

    def _ifnames(self) -> dict[int, str]:
        return {link["index"]: link.get("IFLA_IFNAME") for link in self.ipr.get_links()}

    def read(self, tables: set[int]) -> RoutingState:
        rules = {r for r in map(parse_rule, self.ipr.get_rules(family=socket.AF_INET)) if r and r.table in tables}
        ifnames = self._ifnames()
        routes = set()
        for table in tables:
            for msg in self.ipr.get_routes(family=socket.AF_INET, table=table):
                route = parse_route(msg, ifnames)
                if route and route.table == table:
                    routes.add(route)
        text = self.rt_tables.read_text() if self.rt_tables.exists() else ""
        return RoutingState(parse_rt_tables(text), frozenset(rules), frozenset(routes))

    @staticmethod
    def _rule_args(rule: Rule) -> dict:
        args: dict[str, Any] = {"priority": rule.priority, "table": rule.table}
        if rule.fwmark:
            args["fwmark"] = rule.fwmark
        if rule.uids:
            args["uid_range"] = f"{rule.uids[0]}:{rule.uids[1]}"
        if rule.src:
            args["src"], length = rule.src.split("/")
            args["src_len"] = int(length)
        return args

    def add_rule(self, rule: Rule) -> None:
        with _os_errors(f"rule {rule}"):
            self.ipr.rule("add", **self._rule_args(rule))

    def delete_rule(self, rule: Rule) -> None:
        with _os_errors(f"rule {rule}"):
            self.ipr.rule("del", **self._rule_args(rule))

    def _route_args(self, route: Route) -> dict:
        args: dict[str, Any] = {"table": route.table, "dst": "0.0.0.0/0" if route.dst == DEFAULT else route.dst}
        if route.dev:
            args["oif"] = self._ifindex(route.dev)
        if route.gateway:
            args["gateway"] = route.gateway
        else:
            args["scope"] = SCOPE_LINK  # like `ip route add ... dev X`: directly reachable
        return args

    def _ifindex(self, dev: str) -> int:
        """In this process's netns one ioctl; pyroute2's link_lookup dumps and parses every link
        (half the CPU of a local heal, which runs on every node of an IB storm at once)."""
        if self.own_netns:
            try:
                return socket.if_nametoindex(dev)
            except OSError:
                raise LookupError(f"interface {dev} does not exist") from None
        index = self.ipr.link_lookup(ifname=dev)
        if not index:
            raise LookupError(f"interface {dev} does not exist")
        return index[0]

    def set_route(self, route: Route, replace: bool) -> None:
        args = self._route_args(route)
        with _os_errors(f"route {route}"):
            self.ipr.route("replace" if replace else "add", **args)

    def add_routes(self, routes: list[Route]) -> list[Exception | None]:
        """Each route added (in order); per route None or its error. In this process's netns all
        go out in one datagram (hpc_rtnl: the local heal's path in an IB storm)."""
        if self.own_netns:
            return hpc_rtnl.add_routes(routes, self._ifindex)
        return _one_by_one(self, routes)

    def delete_route(self, route: Route) -> None:
        args = {"table": route.table, "dst": "0.0.0.0/0" if route.dst == DEFAULT else route.dst}
        if route.gateway:
            args["gateway"] = route.gateway
        with _os_errors(f"route {route}"):
            self.ipr.route("del", scope=255, **args)  # like `ip route del`: any scope

    def write_tables(self, tables: dict[int, str]) -> None:
        if not tables:
            self.rt_tables.unlink(missing_ok=True)
            return
        self.rt_tables.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.rt_tables.with_suffix(".tmp")
        tmp.write_text(rt_tables_file(tables))
        tmp.replace(self.rt_tables)


class FakeRouting:
    """A dict-backed kernel for unit tests: same operations, same errors for the same mistakes."""

    def __init__(self, links: set[str] | None = None) -> None:
        self.links = set(links or {"lo", "eth0", "ib0"})
        self.tables: dict[int, str] = {}
        self.rules: set[Rule] = set()
        self.routes: dict[tuple, Route] = {}

    def read(self, tables: set[int]) -> RoutingState:
        return RoutingState(dict(self.tables), frozenset(r for r in self.rules if r.table in tables),
                            frozenset(r for r in self.routes.values() if r.table in tables))

    def add_rule(self, rule: Rule) -> None:
        if rule in self.rules:
            raise FileExistsError(f"rule exists: {rule}")
        self.rules.add(rule)

    def delete_rule(self, rule: Rule) -> None:
        if rule not in self.rules:
            raise FileNotFoundError(f"no such rule: {rule}")
        self.rules.remove(rule)

    def set_route(self, route: Route, replace: bool) -> None:
        if route.dev and route.dev not in self.links:
            raise LookupError(f"interface {route.dev} does not exist")
        if not replace and route.key() in self.routes:
            raise FileExistsError(f"route exists: {route}")
        self.routes[route.key()] = route

    def add_routes(self, routes: list[Route]) -> list[Exception | None]:
        return _one_by_one(self, routes)

    def delete_route(self, route: Route) -> None:
        if route.key() not in self.routes:
            raise FileNotFoundError(f"no such route: {route}")
        del self.routes[route.key()]

    def write_tables(self, tables: dict[int, str]) -> None:
        self.tables = dict(tables)

    def close(self) -> None:
        pass


def _one_by_one(handle: RoutingHandle, routes: list[Route]) -> list[Exception | None]:
    results: list[Exception | None] = []
    for route in routes:
        try:
            handle.set_route(route, replace=False)
            results.append(None)
        except Exception as exc:  # noqa: BLE001 - reported per route, like the raw path
            results.append(exc)
    return results


def apply(handle: RoutingHandle, changes: list[Change]) -> list[str]:
    """Apply a plan in its order; every failure is reported and the rest still applies."""
    errors = []
    for change in changes:
        try:
            _apply_one(handle, change)
        except Exception as exc:  # noqa: BLE001 - netlink and file errors alike end up in the report
            errors.append(f"{change.describe()}: {exc}")
    return errors


def _apply_one(handle: RoutingHandle, change: Change) -> None:
    if change.kind == "rt_tables":
        handle.write_tables(change.new or {})
    elif change.kind == "rule":
        (handle.delete_rule if change.op == "delete" else handle.add_rule)(change.target)
    elif change.op == "delete":
        handle.delete_route(change.old)
    else:
        handle.set_route(change.new, replace=change.op == "update")


def restore_routes(handle: RoutingHandle, state: RoutingState) -> tuple[list[str], list[str]]:
    """The routes of ``state`` put back where the kernel lacks them (what a link flap drops), no
    dump read: each is added, one that exists is left alone (a changed one, or a rule, is for the
    master's heal). (changes, errors), in the planner's words. All in one request (add_routes):
    it runs on every node of an IB storm at once."""
    routes = sorted(state.routes, key=Route.key)  # a table's link route before its gateway's
    changes, errors = [], []
    for route, outcome in zip(routes, handle.add_routes(routes), strict=True):
        words = route_change("add", None, route).describe()
        if outcome is None:
            changes.append(words)
        elif not isinstance(outcome, FileExistsError):
            errors.append(f"{words}: {outcome}")
    return changes, errors


def heal_from_record(cachedir: str) -> dict[str, Any] | None:
    """The local heal (issue 10, point 4): the routing of the last apply restored at once, on this
    host, without the master, under the apply lock. None when nothing was applied yet. Its routes
    go out in one raw request (NetlinkRouting.add_routes): no pyroute2 socket is opened."""
    started = time.monotonic()
    with hpc_applied.exclusive(LOCK):
        record = hpc_applied.load(cachedir, SUBSYSTEM)
        if not record or not record.get("spec", {}).get("routed"):
            return None
        handle = NetlinkRouting()
        try:
            changes, errors = restore_routes(handle, state_from_data(record["state"]))
        finally:
            handle.close()
    return {"changes": changes, "errors": errors, "seconds": round(time.monotonic() - started, 4)}
