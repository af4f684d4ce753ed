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
import signal
import subprocess
from collections.abc import Iterator

import pytest
from labtests import LAB, highstate

from hpclab import cluster
from hpclab import host as labhost
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


class Prebuild:
    """``lab image compute`` in the background from the moment the lab is up (test_pxe_boot's
    image: the phases that need Debian's mirror, ~5 min cold), so the earlier tests hide its time.
    Its own process group, recorded in the run, killed at the end if still running."""

    def __init__(self, lab: cluster.Lab) -> None:
        self.log = lab.run.dir / "image-prebuild.log"
        with self.log.open("ab") as out:
            # nice: the tests running meanwhile come first (their timings: failovers, probes).
            self.proc = subprocess.Popen(["nice", "-n", "19", str(LAB), "image", "--prefix", lab.prefix, "compute"],
                                         stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        lab.run.record("process", lab.run.name("image"), pid=self.proc.pid,
                       starttime=labhost.start_time(self.proc.pid))

    def wait_done(self, timeout: float = 1800) -> None:
        rc = self.proc.wait(timeout=timeout)
        assert rc == 0, f"lab image failed ({rc}):\n{self.log.read_text()[-4000:]}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="session", autouse=True)
def image_prebuild(lab) -> Iterator[Prebuild | None]:
    if os.environ.get("HPCLAB_DISKLESS_BOOT") != "1":  # test_pxe_boot.py is skipped: nothing to build
        yield None
        return
    build = Prebuild(lab)
    try:
        yield build
    finally:
        build.stop()
