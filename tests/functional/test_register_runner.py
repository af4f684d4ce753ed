"""``salt-run diskless.register ... write=True``'s last step on a copy of the example pillar in a
git repository: the inventory file gains the nodes (its comments kept) and one commit names them.
(Reading the leases goes through the boot server: tested in the lab later.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml
from testlib import load_runner

import hpc_register

ROOT = Path(__file__).resolve().parents[2]


def _runner(opts):
    return load_runner("diskless", opts)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def test_write_appends_to_the_inventory_file_and_commits_naming_the_nodes(tmp_path):
    pillar = tmp_path / "pillar"
    shutil.copytree(ROOT / "pillar", pillar)
    _git(pillar, "init", "-q")
    _git(pillar, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    _git(pillar, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    runner = _runner({"pillar_roots": {"base": [str(pillar)]}})
    found = [hpc_register.Registration("labcn3", "52:54:00:aa:00:01", "10.11.0.43")]
    before = (pillar / "cluster.sls").read_text()
    _git(pillar, "config", "user.name", "salt-master")
    _git(pillar, "config", "user.email", "salt@lab.hpc")
    out = runner._write(found, "cn", "admin", "eth0", "compute", {"labcn3": {}})
    assert out["result"] is True, out
    after = (pillar / "cluster.sls").read_text()
    assert after.startswith(before.rstrip("\n").rsplit("\n", 1)[0])
    assert yaml.safe_load(after)["nodes"][-1] == {"nodeset": "labcn3", "role": "cn", "image": "compute",
        "interfaces": {"admin": {"name": "eth0", "ip": "10.11.0.43", "mac": "52:54:00:aa:00:01"}}}
    log = _git(pillar, "log", "-1", "--format=%s", "--name-only")
    assert log.splitlines()[0] == "Register labcn3 (52:54:00:aa:00:01, 10.11.0.43) from the boot server's DHCP leases"
    assert "cluster.sls" in log and _git(pillar, "status", "--porcelain") == ""
