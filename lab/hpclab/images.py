"""Diskless images for a lab run (issue 12).

The lab has no Debian mirror (its traffic stays inside it), so the phases that download
(``base``: mmdebstrap; ``post-install``: Salt from PyPI) run on this machine, into the boot
server's own store: its /srv is a plain directory of the run (``host.srv_dir``). They run with
the code, built-in scripts, base files and variables ``diskless.build`` uses on the boot server,
so their cache keys are the ones the boot server computes (a phase is keyed by the variables its
scripts name, and these name none of the master's). What needs the lab's master, the
``configure`` phase (its address and key fingerprint) and the pack, is left to the real
``salt-run diskless.build`` on the boot server.

Nothing outside the run's directory is written. ``lab image`` runs it at the lowest CPU priority,
so the lab's TCG VMs (whose health probes time out when starved) keep their share.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from . import host as labhost
from .registry import REPO, Run

sys.path.insert(0, str(REPO / "_utils"))

import hpc_image_build as build  # noqa: E402
import hpc_pillar  # noqa: E402

BUILTIN = REPO / "salt" / "diskless"


def _store(run: Run, spec) -> build.Store:
    """The boot server's ``diskless.store`` as this machine sees it (under the server's /srv)."""
    store = Path(spec.store)
    if not store.is_relative_to("/srv"):
        raise ValueError(f"diskless.store: {spec.store!r} is not under /srv, the lab boot server's own disk")
    return build.Store(labhost.srv_dir(run, spec.server) / store.relative_to("/srv"))


def local_phases(plan, env: dict[str, str]) -> list:
    """The phases of ``plan`` this machine can build with ``env``: up to the first one whose
    scripts name a variable only the boot server knows (the master's address and key)."""
    out = []
    for phase in plan.phases:
        if any(v not in env for s in phase.scripts for v in s.reads):
            break
        out.append(phase)
    return out


def prebuild(run: Run, pillar: dict, image: str, log: Callable[[str], None] = print) -> list[str]:
    """Build ``image``'s phases that need nothing of the master, into the boot server's store.
    Returns the phases built (none when the store already holds them)."""
    spec = hpc_pillar.load(pillar)["diskless"]
    store = _store(run, spec)
    site = run.dir / "images-no-site"  # the lab boot server has no site scripts
    site.mkdir(exist_ok=True)
    env = {"HPCNET_PYTHON_REQUIREMENTS": build.node_requirements()}
    wanted = build.image_named(spec.images, image)
    plan, steps, builder = build.prepare(wanted, spec.mirror, store, BUILTIN, site, env, log=log)
    ours = {p.key for p in local_phases(plan, env)}
    return builder.apply([s for s in steps if s.kind == "phase" and s.new in ours])
