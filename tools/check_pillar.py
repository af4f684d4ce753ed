"""Render the pillar for every host of the inventory, as the master would, and validate each.

Usage: check_pillar.py [PILLAR_DIR]      (exit 0: valid; 1: mistakes, one line each; 2: cannot render)

The inventory (cluster, networks, nodes) must be assigned to every minion ('*'):
it is rendered once for a probe id to learn the hosts; then each host's pillar is
known with the grains it will have (id, hpc_role, ...), validated, and, as the gate
does, checked to declare that host.

In time linear in the number of hosts: hosts whose top file assigns the same pillar
files get one render when those files cannot depend on the minion (plain YAML, or
Jinja that never mentions grains, opts, salt, pillar, include or import), checked by
rendering the first and the last host of the set; a set whose files may depend on the
minion, or whose two renders differ, is rendered host by host, as is every host when
the top file itself may depend on the minion. Each distinct rendered pillar (by its
digest) is validated once.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import hashlib
import json
import logging
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_utils"))
sys.path.insert(0, str(ROOT / "_grains"))

import hpc as hpc_grains  # noqa: E402
import salt.config  # noqa: E402
import salt.loader  # noqa: E402
import salt.pillar  # noqa: E402
import salt.utils.minions  # noqa: E402

import hpc_pillar  # noqa: E402
from hpc_types import expand  # noqa: E402

PROBE_ID = "check-pillar-probe"
JINJA_MARKS = ("{{", "{%", "{#")
# What a template must name to see the minion (its grains, opts, the pillar so far, Salt's
# functions) or to pull in another file that might; "include" also catches a pillar's include key.
MINION_WORDS = ("grains", "opts", "salt", "pillar", "include", "import", "extend")
# Renderers whose output depends on their input text only.
PURE_RENDERERS = {"jinja", "yaml", "yamlex", "json", "gpg"}

MatchKey = tuple[tuple[str, tuple[str, ...]], ...]  # ((saltenv, (sls, ...)), ...): what the top file assigns


def minion_independent(text: str) -> bool:
    """True when a pillar or top file, rendered for any two minions, cannot differ (conservative)."""
    first = text.split("\n", 1)[0]
    if first.startswith("#!"):
        pipeline = {part.strip().split(" ")[0] for part in first[2:].split("|")}
        if not pipeline <= PURE_RENDERERS:
            return False
    if "include" in text:
        return False
    if not any(mark in text for mark in JINJA_MARKS):
        return True  # plain YAML
    return not any(word in text for word in MINION_WORDS)


@functools.lru_cache(maxsize=256)
def plain_glob(match: Any) -> bool:
    """A top file target that the compound matcher would read as one glob on the minion id."""
    if not isinstance(match, str) or not match or any(c.isspace() for c in match):
        return False
    if match in ("and", "or", "not", "(", ")"):
        return False
    info = salt.utils.minions.parse_target(match)
    return not (info and info.get("engine"))


def digest(data: Any) -> str:
    """A stable digest of a rendered pillar (key order does not matter)."""
    text = json.dumps(data, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def declared(data: dict) -> list[str]:
    """The host names a valid pillar declares, in inventory order (as ``hpc_pillar.inventory``)."""
    return list(dict.fromkeys(name for group in data["nodes"] for name in expand(str(group["nodeset"]).strip())))


class RenderErrors(logging.Handler):
    """Keeps Salt's render-error log lines (which say where the YAML/Jinja broke), without tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip()
        if "render error" in text.lower() and "see master log" not in text:
            self.lines.append(" ".join(text.split()))


class Renderer:
    """Compiles the pillar of one minion id from a pillar tree, without a master."""

    def __init__(self, pillar_dir: Path, cache: Path) -> None:
        opts = salt.config.minion_config(None)
        opts.update(
            file_client="local",
            file_roots={"base": [str(ROOT / "salt"), str(ROOT / "ext")]},
            pillar_roots={"base": [str(pillar_dir)]},
            cachedir=str(cache),
            extension_modules=str(cache / "extmods"),
            pillarenv=None,
            saltenv="base",
        )
        self.opts = opts
        self.functions = salt.loader.minion_mods(opts, utils=salt.loader.utils(opts))

    def grains(self, minion_id: str, pattern: str) -> dict:
        parts = hpc_grains._parse_hostname(minion_id, pattern)
        grains = {"id": minion_id, "host": minion_id, "nodename": minion_id}
        if parts:
            grains.update(hpc_role=parts["role"], hpc_node_id=parts["id"], hpc_prefix=parts["prefix"])
        return grains

    def pillar(self, minion_id: str, pattern: str = hpc_grains.DEFAULT_HOSTNAME_PATTERN) -> salt.pillar.Pillar:
        opts = dict(self.opts, id=minion_id)
        grains = self.grains(minion_id, pattern)
        opts["grains"] = grains
        return salt.pillar.Pillar(opts, grains, minion_id, "base", functions=self.functions)

    def render(self, minion_id: str, pattern: str = hpc_grains.DEFAULT_HOSTNAME_PATTERN) -> dict:
        return self.pillar(minion_id, pattern).compile_pillar()


class TopMatcher:
    """Which pillar files the top file assigns to a host, from one rendered top and Salt's own matchers.

    Salt's ``confirm_top`` calls each matcher with the loader's opts (the probe's id); here every
    matcher is given the host's opts and id explicitly, as the compound matcher does.
    """

    def __init__(self, probe: salt.pillar.Pillar) -> None:
        self.probe = probe
        self.top, self.errors = probe.get_top()
        self.opts = dict(probe.opts)

    def matches(self, host: str, grains: dict) -> MatchKey:
        opts = self.opts
        opts.update(id=host, minion_id=host, grains=grains)
        out: dict[str, list[str]] = {}
        for saltenv, body in self.top.items():
            if opts["pillarenv"] and saltenv != opts["pillarenv"]:
                continue
            for match, data in body.items():
                if self._confirm(match, data, opts, host):
                    env = out.setdefault(saltenv, [])
                    env += [item for item in data if isinstance(item, str) and item not in env]
        return tuple((env, tuple(sls)) for env, sls in out.items())

    def _confirm(self, match: str, data: list, opts: dict, host: str) -> bool:
        kind = "compound"
        for item in data:
            if isinstance(item, dict) and "match" in item:
                kind = item["match"]
        if kind in ("compound", "glob") and plain_glob(match):
            # What the compound matcher does with one word that names no engine, without its
            # parsing, logging and eval for each of thousands of hosts.
            return fnmatch.fnmatch(host, match)
        matchers = self.probe.matchers
        if kind == "nodegroup":
            nodegroups = opts.get("nodegroups") or {}
            if match not in nodegroups:
                return False
            target = salt.utils.minions.nodegroup_comp(match, nodegroups)
            return bool(matchers["compound_match.match"](target, opts=opts, minion_id=host))
        return bool(matchers[f"{kind}_match.match"](match, opts=opts, minion_id=host))

    def independent(self, key: MatchKey) -> bool:
        """Whether every file assigned by ``key`` renders the same for any minion."""
        return all(self.file_independent(env, sls) for env, names in key for sls in names)

    def file_independent(self, saltenv: str, pattern: str) -> bool:
        for sls in self._expand(saltenv, pattern):
            path = self.probe.client.get_state(sls, saltenv).get("dest")
            if path and not minion_independent(Path(path).read_text(errors="replace")):
                return False
        return True  # a file that does not exist renders the same error for everyone

    def top_independent(self) -> bool:
        for saltenv in self.probe._get_envs():
            path = self.probe.client.cache_file(self.probe.opts["state_top"], saltenv)
            if path and not minion_independent(Path(path).read_text(errors="replace")):
                return False
        return True

    def _expand(self, saltenv: str, pattern: str) -> list[str]:
        return fnmatch.filter(self.probe.avail.get(saltenv, []), pattern) or [pattern]


def pillars_by_host(renderer: Renderer, probe: salt.pillar.Pillar, hosts: list[str], pattern: str,
                    ) -> tuple[dict[str, str], dict[str, dict]]:
    """(digest of each host's pillar, pillar of each digest), rendering as few times as is safe."""
    per_host: dict[str, str] = {}
    pillars: dict[str, dict] = {}

    def render(host: str) -> str:
        data = renderer.render(host, pattern)
        key = digest(data)
        pillars.setdefault(key, data)
        per_host[host] = key
        return key

    groups: dict[MatchKey, list[str]] = {}
    try:
        matcher = TopMatcher(probe)
        if matcher.errors or not matcher.top_independent():
            raise LookupError("the top file may differ per minion")
        for host in hosts:
            groups.setdefault(matcher.matches(host, renderer.grains(host, pattern)), []).append(host)
    except LookupError:
        groups, shared = {(): hosts}, False
    except Exception as exc:  # noqa: BLE001 - anything Salt's matching would not do as we do: render every host
        # Correct but ~80 ms per host: say why, or a slow run at thousands of hosts is a mystery.
        print(f"check-pillar: top-file matching failed ({type(exc).__name__}: {exc}); rendering each of "
              f"{len(hosts)} hosts on its own", file=sys.stderr)
        groups = {(): hosts}
        shared = False
    else:
        shared = True
    for key, members in groups.items():
        if shared and matcher.independent(key):
            probes = {render(members[0]), render(members[-1])}
            if len(probes) == 1:
                per_host.update(dict.fromkeys(members, probes.pop()))
                continue
        for host in members:
            if host not in per_host:
                render(host)
    return per_host, pillars


def report(hosts: list[str], per_host: dict[str, str], lines_of: dict[str, list[str]],
           extra: dict[str, list[str]]) -> list[str]:
    """Every line once, in the order the hosts meet them, prefixed by its hosts unless it concerns all.

    ``lines_of``: the lines of each distinct pillar (by digest); ``extra``: lines of one host.
    """
    members: dict[str, list[str]] = {}
    for host in hosts:
        members.setdefault(per_host[host], []).append(host)
    by_line: dict[str, list[list[str]]] = {}
    seen: set[str] = set()
    for host in hosts:
        key = per_host[host]
        if key not in seen:
            seen.add(key)
            for line in lines_of[key]:
                by_line.setdefault(line, []).append(members[key])
        for line in extra.get(host, ()):
            by_line.setdefault(line, []).append([host])
    order = {host: i for i, host in enumerate(hosts)}
    out = []
    for line, chunks in by_line.items():
        if sum(len(chunk) for chunk in chunks) == len(hosts):
            out.append(line)
        else:
            who: Iterable[str] = chunks[0] if len(chunks) == 1 else sorted(
                (h for chunk in chunks for h in chunk), key=order.__getitem__)
            out.append(f"{','.join(who)}: {line}")
    return out


def check(pillar_dir: Path) -> tuple[int, list[str]]:
    """(exit code, lines): every mistake once, prefixed by the hosts it concerns when not all of them."""
    with tempfile.TemporaryDirectory(prefix="check-pillar-") as cache:
        renderer = Renderer(pillar_dir, Path(cache))
        probe_pillar = renderer.pillar(PROBE_ID)
        probe = probe_pillar.compile_pillar()
        if probe.get("_errors"):
            return 2, CAPTURE.lines or [f"pillar render error: {e}" for e in probe["_errors"]]
        errors = hpc_pillar.validate(probe)
        if errors:  # the inventory itself is broken: per-host renders would only repeat it
            return 1, [str(e) for e in errors]
        pattern = probe["cluster"].get("hostname_pattern", hpc_grains.DEFAULT_HOSTNAME_PATTERN)
        hosts = declared(probe)
        per_host, pillars = pillars_by_host(renderer, probe_pillar, hosts, pattern)
    lines_of: dict[str, list[str]] = {}
    names: dict[str, set[str]] = {}  # the hosts each valid pillar declares
    known = {digest(probe): []}  # the probe's pillar was validated above
    for key, data in pillars.items():
        errors = known[key] if key in known else hpc_pillar.validate(data)
        lines_of[key] = [f"pillar render error: {e}" for e in data.get("_errors", [])] + [str(e) for e in errors]
        if not errors:
            names[key] = set(declared(data))
    # As the gate: a host whose own pillar is valid but does not declare it.
    extra = {host: [f"nodes: minion {host} is not declared in any nodeset (got {host!r})"]
             for host in hosts if per_host[host] in names and host not in names[per_host[host]]}
    out = report(hosts, per_host, lines_of, extra)
    return (1 if out else 0), out


CAPTURE = RenderErrors()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pillar", nargs="?", default=str(ROOT / "pillar"), help="pillar tree (default: pillar/)")
    args = parser.parse_args(argv)
    # Salt's own log is not the user's report: keep only its render errors, then say them once, plainly.
    logging.getLogger().handlers[:] = [CAPTURE]
    logging.getLogger().setLevel(logging.ERROR)
    pillar_dir = Path(args.pillar)
    if not (pillar_dir / "top.sls").is_file():
        print(f"check-pillar: {pillar_dir}/top.sls not found", file=sys.stderr)
        return 2
    code, lines = check(pillar_dir.resolve())
    for line in lines:
        print(line, file=sys.stderr if code else sys.stdout)
    if code == 0:
        print(f"check-pillar: {pillar_dir} is valid")
    return code


if __name__ == "__main__":
    sys.exit(main())
