"""Last in the lab tier (file order): `lab down` removes everything the run made."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest
from labtests import lab_cli

from hpclab import cluster

pytestmark = pytest.mark.lab


@pytest.mark.skipif(bool(os.environ.get("HPCLAB_REUSE")), reason="HPCLAB_REUSE: the lab is not ours to take down")
def test_down_leaves_nothing(lab):
    pids = lab.all_pids()
    assert pids
    assert lab_cli(lab, "down").returncode == 0
    assert cluster.leftovers_of(lab.prefix) == []
    for pid in pids:  # QEMU is this process's child: collect it (`lab down` ran in another process)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    assert [p for p in pids if Path(f"/proc/{p}").exists()] == []
    ps = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout
    assert [ln for ln in ps.splitlines() if lab.prefix + "-" in ln or f"/{lab.prefix}/" in ln] == []
    assert not lab.run.dir.exists()
