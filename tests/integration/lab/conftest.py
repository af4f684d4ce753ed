"""One whole lab (the example cluster: 12 namespace hosts, 2 QEMU directors, a real master and
13 minions) per pytest run, with its own random prefix; torn down at the end, even on failure.

Bringing it up takes ~2-3 minutes (the directors' minions run under TCG). ``converged`` is that
lab after its first highstate through the master (run once, shared by every test that needs the
states applied). test_teardown.py runs last (file order) and takes the lab down.

``HPCLAB_REUSE=<prefix>`` runs the tier against a lab already up (`lab up --prefix <prefix>`)
instead, and leaves it up (the teardown test is skipped): quicker while writing a test.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator

import pytest
from labtests import highstate

from hpclab import cluster
from hpclab.registry import LAB_ROOT


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root (namespaces, links, mounts, QEMU)"
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (the directors are VMs)"
    return None


@pytest.fixture(scope="session")
def lab() -> Iterator[cluster.Lab]:
    if reason := _skip_reason():
        pytest.skip(reason)
    if reuse := os.environ.get("HPCLAB_REUSE"):
        yield cluster.Lab.load(reuse)
        return
    prefix = "t" + secrets.token_hex(2)
    while (LAB_ROOT / prefix).exists():
        prefix = "t" + secrets.token_hex(2)
    try:
        yield cluster.up(prefix, progress=print, set_current=False)
    finally:
        cluster.down(prefix, progress=print)


@pytest.fixture(scope="session")
def converged(lab) -> dict:
    """The first highstate's result, by minion (the lab now runs what the pillar says)."""
    return highstate(lab)
