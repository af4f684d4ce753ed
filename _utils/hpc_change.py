"""The one plan shape and the one state shape every subsystem shares.

A planner compares what the pillar wants with what the host has and returns ``list[Change]``:
what to add, what to edit in place, what to delete, in the order to apply them. A state turns
a plan into Salt's return through ``converge``: read and plan; nothing to do -> True;
``test=True`` -> None with the plan; else apply, read and plan again; anything left -> False.

Pure: no Salt dunders, no I/O. docs/core.md shows how a new subsystem uses both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

OPS = ("add", "update", "delete")


@dataclass(frozen=True)
class Change:
    """One step of a plan.

    ``op``: ``add`` (absent, wanted), ``update`` (same identity, other settings: edited in place,
    never deleted and re-added), ``delete`` (present, ours, not wanted).
    ``kind``: what sort of object (``route``, ``rule``, ``chain``, ``service``...).
    ``key``: the object's identity in words (``201 default``, ``tcp 10.12.0.10:22``).
    ``old`` / ``new``: the object as it is and as it will be (None where it does not exist);
    a model object of the planner, which the handle applying the plan understands.
    ``summary``: for state output and logs; not part of the plan's data.
    """

    op: str
    kind: str
    key: str
    old: Any = None
    new: Any = None
    summary: str = ""  # the object in a human's words (``default via 10.13.0.30 dev ib0 table 201``)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"Change.op must be one of {', '.join(OPS)} (got {self.op!r})")

    @property
    def target(self) -> Any:
        """The object the step is about: the new one, or the old one for a delete."""
        return self.old if self.op == "delete" else self.new

    def describe(self) -> str:
        return f"{self.op} {self.kind} {self.summary or self.key}"

    def as_data(self) -> dict[str, Any]:
        """Plain data for state output, the CLI and YAML plan cases (old/new only where set)."""
        out: dict[str, Any] = {"op": self.op, "kind": self.kind, "key": self.key}
        for name in ("old", "new"):
            value = getattr(self, name)
            if value is not None:
                out[name] = plain(value)
        return out


def plain(value: Any) -> Any:
    """A model object as plain data: dataclasses as dicts (unset fields left out, or as the
    object's own ``as_data()`` says, as for a model that is a NamedTuple), tuples and sets as
    lists."""
    if hasattr(value, "as_data") and not isinstance(value, type):
        return value.as_data()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
        return {name: plain(v) for name, v in fields if v is not None}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    return value


def as_data(changes: Sequence[Change]) -> list[dict[str, Any]]:
    return [c.as_data() for c in changes]


# ---------------------------------------------------------------- the one state shape

# What a plan callable returns: the steps (Change objects, or their as_data() dicts when they came
# through __salt__), or {"changes": steps, "problems": [...], "warnings": [...]}:
# - problems: some of what the pillar asks cannot be planned on this host (a user it does not
#   know): reported, and the result is False, but the rest still applies;
# - warnings: what the admin must hear about but that leaves nothing undone here (a diskless
#   image not built yet: its nodes get no boot menu until a build, which a highstate never
#   starts). Salt's highstate output shows them in their own colour and counts them; the result
#   stays what the steps make it.
Planned = Sequence[Any] | Mapping[str, Sequence[Any]]


def _words(change: Any) -> str:
    if isinstance(change, Change):
        return change.describe()
    if isinstance(change, dict) and {"op", "kind", "key"} <= set(change):
        return f"{change['op']} {change['kind']} {change['key']}"
    return str(change)


def _split(planned: Planned) -> tuple[list[Any], list[str]]:
    if isinstance(planned, Mapping):
        return list(planned.get("changes") or []), list(planned.get("problems") or [])
    return list(planned), []


def _warn(ret: dict[str, Any], planned: Planned) -> None:
    """The plan's warnings as Salt's ``warnings`` key (only the latest plan's)."""
    warnings = list(planned.get("warnings") or []) if isinstance(planned, Mapping) else []
    if warnings:
        ret["warnings"] = warnings
    else:
        ret.pop("warnings", None)


def converge(
    name: str,
    what: str,
    plan: Callable[[], Planned],
    apply: Callable[[list[Any]], Sequence[str] | None],
    test: bool,
    errors: tuple[type[BaseException], ...] = (),
) -> dict[str, Any]:
    """Salt's state return for one subsystem object: read, plan; nothing to do -> True;
    ``test`` -> None with the plan; else apply, read and plan again; anything left -> False.

    ``plan()`` reads the host and returns what differs (see ``Planned``); ``apply(steps)`` makes
    it so and returns the steps that failed, in words (the rest still applies). ``errors``:
    exception types that mean "could not" (the modules' CommandExecutionError); they become
    result False with their message.
    """
    ret: dict[str, Any] = {"name": name, "changes": {}, "result": True, "comment": ""}
    try:
        planned = plan()
        steps, problems = _split(planned)
        _warn(ret, planned)
        if not steps:
            ret["result"] = not problems
            ret["comment"] = "\n".join([f"{what}: nothing to change", *problems])
            return ret
        if test:
            ret.update(result=None, changes={"plan": [_words(c) for c in steps]},
                       comment="\n".join([f"{what}: {len(steps)} change(s) would be made", *problems]))
            return ret
        failed = list(apply(steps) or [])
        planned = plan()
        left, problems = _split(planned)
        _warn(ret, planned)
    except errors as exc:
        ret.update(result=False, comment=f"{what}: {exc}")
        return ret
    still = {_words(c) for c in left}
    # Only what is no longer in the plan was applied: a step that failed is not reported as done.
    ret["changes"] = {"applied": [w for w in map(_words, steps) if w not in still]}
    failed += [f"still differs after applying: {w}" for w in sorted(still)]
    failed = list(dict.fromkeys(failed))  # the apply may have read back and said so already
    ret["result"] = not (failed or problems)
    done = f"{what}: {len(steps)} change(s) applied" if not failed else f"{what}: applied with errors"
    ret["comment"] = "\n".join([done, *failed, *problems])
    return ret


def record_in_sync(ret: dict[str, Any], what: str, apply: Callable[[], Mapping[str, Any]], test: bool,
                   errors: tuple[type[BaseException], ...] = ()) -> dict[str, Any]:
    """After ``converge`` found nothing to change (or applied it), run the subsystem's apply once
    more so that this pillar becomes its last applied one (``hpc_applied``): the periodic
    re-apply and the heals converge to it, not to an older one. ``apply()`` returns
    ``{"changes": [...], "errors": [...]}``; it re-reads the host, so whatever moved meanwhile is
    applied and said. Skipped under ``test`` and after a failed run (nothing to record)."""
    if test or ret["result"] is not True or ret["changes"]:
        return ret
    try:
        again = apply()
    except errors as exc:
        ret.update(result=False, comment=f"{what}: {exc}")
        return ret
    if again["changes"]:
        ret["changes"] = {"applied": list(again["changes"])}
    if again["errors"]:
        ret.update(result=False, comment="\n".join([ret["comment"], *again["errors"]]))
    return ret


def converge_recorded(name: str, what: str, plan: Callable[[], Planned], apply: Callable[[], Mapping[str, Any]],
                      test: bool, errors: tuple[type[BaseException], ...] = ()) -> dict[str, Any]:
    """``converge`` for a subsystem whose apply records what it applied (``hpc_applied``):
    ``apply()`` returns ``{"changes", "errors"}``, and with nothing to change it still runs once
    (``record_in_sync``), so this pillar becomes the one re-applies and heals converge to."""
    ret = converge(name, what, plan, lambda _: apply()["errors"], test=test, errors=errors)
    return record_in_sync(ret, what, apply, test, errors=errors)
