"""Render the pillar for every host of the inventory, as the master would, and validate each.

Usage: check_pillar.py [PILLAR_DIR]      (exit 0: valid; 1: mistakes, one line each; 2: cannot render)

The inventory (cluster, networks, nodes) must be assigned to every minion ('*'):
it is rendered once for a probe id to learn the hosts, then the pillar is
rendered for each host with the grains it will have (id, hpc_role, ...).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_utils"))
sys.path.insert(0, str(ROOT / "_grains"))

import hpc as hpc_grains  # noqa: E402
import salt.config  # noqa: E402
import salt.loader  # noqa: E402
import salt.pillar  # noqa: E402

import hpc_pillar  # noqa: E402

PROBE_ID = "check-pillar-probe"


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

    def render(self, minion_id: str, pattern: str = hpc_grains.DEFAULT_HOSTNAME_PATTERN) -> dict:
        opts = dict(self.opts, id=minion_id)
        grains = self.grains(minion_id, pattern)
        opts["grains"] = grains
        return salt.pillar.Pillar(opts, grains, minion_id, "base", functions=self.functions).compile_pillar()


def check(pillar_dir: Path) -> tuple[int, list[str]]:
    """(exit code, lines): every mistake once, prefixed by the hosts it concerns when not all of them."""
    with tempfile.TemporaryDirectory(prefix="check-pillar-") as cache:
        renderer = Renderer(pillar_dir, Path(cache))
        probe = renderer.render(PROBE_ID)
        if probe.get("_errors"):
            return 2, CAPTURE.lines or [f"pillar render error: {e}" for e in probe["_errors"]]
        errors = hpc_pillar.validate(probe)
        if errors:  # the inventory itself is broken: per-host renders would only repeat it
            return 1, [str(e) for e in errors]
        pattern = probe["cluster"].get("hostname_pattern", hpc_grains.DEFAULT_HOSTNAME_PATTERN)
        by_line: dict[str, list[str]] = {}
        hosts = list(hpc_pillar.inventory(probe))
        for host in hosts:
            data = renderer.render(host, pattern)
            lines = [f"pillar render error: {e}" for e in data.get("_errors", [])]
            lines += [str(e) for e in hpc_pillar.validate(data)]
            for line in lines:
                by_line.setdefault(line, []).append(host)
    out = [line if len(who) == len(hosts) else f"{','.join(who)}: {line}" for line, who in by_line.items()]
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
