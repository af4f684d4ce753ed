"""What an image build must run, phase by phase, and what it can take from the cache (seed 002's
KestrelHPC phases; issue 12, step 1). Pure: the boot server's module reads the scripts and the
cache, and runs what this plans.

Phases, in order (seed 002): ``base`` (mmdebstrap --variant=minbase), ``install`` (scripts run once
on the fresh image), ``packages`` (the image's packages, per module), ``post-install`` (scripts
that set up what was just installed), ``configure`` (the site's settings: what changes most).

Each phase is a directory of scripts run in name order. A script of the same name in the site's
override directory replaces the built-in one (seed 002: "any script can be replaced by a version
with the same name in /etc/kestrel"); a new name there is added.

Each phase is cached under a key: the hash of the previous phase's key and of everything the phase
reads (suite, mirror and packages for ``base``; its scripts' names and contents; the packages for
``packages``; the builder's variables its scripts name, below). A change reaches only its own phase
and those after it: a configure-only change rebuilds ``configure`` alone. The last phase's key
names the version: ``<image>-<12 hex digits>``.

The builder tells the scripts what they need from outside the image in ``HPCNET_*`` variables
(the master's address and key fingerprint, Salt and our modules' Python packages). A phase's key holds the ones its
scripts' text names, and only those: another master is a configure-only change, not a rebuild of
the Salt install. A script must name a variable it depends on (not leave it to a program it runs).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

PHASES = ("base", "install", "packages", "post-install", "configure")
VERSION_DIGITS = 12  # hpc_schema.ImageVersion


@dataclass(frozen=True)
class Script:
    phase: str
    name: str
    sha256: str
    origin: str  # "builtin" or "site"
    reads: tuple[str, ...] = ()  # the builder's variables (HPCNET_*) its text names


@dataclass(frozen=True)
class Phase:
    name: str
    key: str  # the cache key of the image after this phase
    scripts: tuple[Script, ...]
    cached: bool  # a snapshot under this key exists: nothing to run


@dataclass(frozen=True)
class BuildPlan:
    image: str
    version: str
    phases: tuple[Phase, ...]

    def to_run(self) -> list[Phase]:
        """The phases to run: from the first one the cache lacks to the end (each builds on the
        one before it, so nothing after a rebuilt phase can be reused)."""
        first = next((i for i, p in enumerate(self.phases) if not p.cached), len(self.phases))
        return list(self.phases[first:])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_VARIABLE = re.compile(rb"HPCNET_[A-Z0-9_]+")


def scripts(phase: str, builtin: Mapping[str, bytes], site: Mapping[str, bytes]) -> list[Script]:
    """The phase's scripts in run order (by name): the site's replace built-ins of the same name."""
    merged = {name: Script(phase, name, sha256(body), "builtin", _reads(body)) for name, body in builtin.items()}
    merged |= {name: Script(phase, name, sha256(body), "site", _reads(body)) for name, body in site.items()}
    return [merged[name] for name in sorted(merged)]


def _reads(body: bytes) -> tuple[str, ...]:
    return tuple(sorted({name.decode() for name in _VARIABLE.findall(body)}))


def _key(previous: str, phase: str, inputs: object) -> str:
    blob = json.dumps({"previous": previous, "phase": phase, "inputs": inputs}, sort_keys=True)
    return sha256(blob.encode())


def plan(image: str, base_inputs: Mapping[str, object], packages: Mapping[str, Sequence[str]],
         phase_scripts: Mapping[str, Sequence[Script]], cached: Iterable[str],
         env: Mapping[str, str] | None = None, files: Mapping[str, object] | None = None) -> BuildPlan:
    """The build of ``image``: ``base_inputs`` (suite, mirror, variant...), ``packages`` per
    module, each phase's scripts (``scripts()``), the cache keys present, and ``env``: what the
    scripts see (the Salt master's address, Salt's version...). A phase's key holds the part of
    ``env`` its scripts name: a script's output depends on it as much as on its own text.
    ``files``: by phase, the digest of the files the builder copies into it before its scripts
    run (the master's Salt modules, for ``configure``); a phase without any keeps its old key."""
    cached = set(cached)
    phases, key = [], ""
    for name in PHASES:
        own = tuple(phase_scripts.get(name, ()))
        inputs: dict[str, object] = {"scripts": [(s.name, s.sha256) for s in own]}
        if name == "base":
            inputs["base"] = dict(base_inputs)
        else:
            named = {variable for script in own for variable in script.reads}
            inputs["env"] = {k: v for k, v in sorted((env or {}).items()) if k in named}
        if files and name in files:
            inputs["files"] = files[name]
        if name == "packages":
            inputs["packages"] = {module: sorted(set(names)) for module, names in sorted(packages.items())}
        key = _key(key, name, inputs)
        phases.append(Phase(name, key, own, key in cached))
    return BuildPlan(image, f"{image}-{key[:VERSION_DIGITS]}", tuple(phases))


def prune(versions: Sequence[str], keep: int, in_use: Iterable[str]) -> list[str]:
    """The versions to delete (``versions`` oldest first): all but the newest ``keep``, never one
    in use (pinned in the pillar, or the one before a pinned one: the menu's rollback entry)."""
    protected = set(in_use)
    old = list(versions[:-keep]) if keep > 0 else list(versions)
    return [v for v in old if v not in protected]
