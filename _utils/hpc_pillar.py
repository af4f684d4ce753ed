"""Entry points of the pillar schema: validate, load, inventory, and the report format.

Used by ``tools/check_pillar.py`` and the tests; Salt modules read the pillar through
``hpc_context`` (once per run). Pure Python; no Salt dunders, no I/O.
"""

from __future__ import annotations

from typing import Any

from hpc_checks import check
from hpc_inventory import Host, expand_groups
from hpc_schema import PillarError, PillarInvalid, parse_sections

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

__all__ = ["PillarError", "PillarInvalid", "validate", "load", "inventory", "report"]


def validate(pillar: Any) -> list[PillarError]:
    """Every error of the pillar: structure first, then cross-section checks on what parsed."""
    if not isinstance(pillar, dict):
        return [PillarError("(pillar)", "must be a mapping", pillar)]
    parsed = parse_sections(pillar)
    return parsed.errors + check(parsed)


def load(pillar: dict) -> dict[str, Any]:
    """The parsed sections of a valid pillar; raises PillarInvalid with every error otherwise."""
    errors = validate(pillar)
    if errors:
        raise PillarInvalid(errors)
    return parse_sections(pillar).sections


def inventory(pillar: dict) -> dict[str, Host]:
    """Hosts by name, expanded from a valid pillar's node groups."""
    return expand_groups(load(pillar)["nodes"])[0]


def report(errors: list[PillarError]) -> str:
    """One line per error, in pillar order."""
    return "\n".join(str(e) for e in errors)
