"""`make check-pillar` and the pre-commit hook, run as a user would, on copies of the example pillar."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testlib import ROOT

CHECK = [sys.executable, str(ROOT / "tools" / "check_pillar.py")]


def pillar_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "pillar"
    shutil.copytree(ROOT / "pillar", dest)
    return dest


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_example_pillar_passes():
    out = subprocess.run(CHECK + [str(ROOT / "pillar")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "is valid" in out.stdout


# (file, text to replace, replacement, the line check-pillar must print)
MISTAKES = [
    ("lvs.sls", "{host: labfe3, weight: 100}", "{host: labfe3, weight: -1}",
     "lvs.services[0].real_servers[2].weight: must be 0..65535 (got -1)"),
    ("lvs.sls", "persistence: 600", "persistence: -1", "lvs.services[0].persistence: must be >= 0 (got -1)"),
    ("lvs.sls", "scheduler: wlc", "scheduler: best", "lvs.services[0].scheduler: must be one of"),
    ("lvs.sls", "port: 22", "port: 0", "lvs.services[0].port: must be 1..65535 (got 0)"),
    ("lvs.sls", "{host: labfe2, weight: 100}", "{host: labfe7, weight: 100}",
     "lvs.services[0].real_servers[1].host: is not a declared host (got 'labfe7')"),
    ("keepalived.sls", "vrid: 52", "vrid: 51\n      # same L2 as lvs_vip? no: ib",
     None),  # different networks: VRID 51 may be reused, so this copy stays valid
    ("keepalived.sls", "priorities: {lablvs1: 150", "priorities: {lablvs1: 300",
     "keepalived.instances[0].priorities.lablvs1: must be 1..254 (got 300)"),
    ("keepalived.sls", "vrrp_version: 3", "vrrp_version: 2",
     "keepalived.instances[0].advert_int: below 1 s requires vrrp_version 3 (got 0.1)"),
    ("policy_routing.sls", "{id: 201, name: alinat}", "{id: 0, name: alinat}",
     "policy_routing.tables[0].id: must be 1..252 (got 0)"),
    ("policy_routing.sls", "via: 10.13.0.30", "via: 192.0.2.30",
     "policy_routing.routes[1].via: is outside every declared network (got '192.0.2.30')"),
    ("policy_routing.sls", "to: 10.13.0.0/16, dev: ib0}", "to: 10.13.0.0/16, dev: ib9}",
     "policy_routing.routes[0].dev: is not a declared interface of the routed hosts"),
    ("cluster.sls", "nodeset: labfe[1-3]", "nodeset: labfe[1-3",
     "nodes[2].nodeset: is not a valid nodeset"),
    ("cluster.sls", "ib: {name: ib0, ip: 10.13.1.1}", "ib: {name: ib0, ip: 10.14.1.1}",
     "nodes[4].interfaces.ib.ip: 2 hosts' addresses (labcn1...) are outside ib 10.13.0.0/16 (got '10.14.1.1')"),
    ("cluster.sls", "mac: '52:54:00:0b:00:05'", "mac: '52:54:00:0b:00:41'",
     "nodes[5].interfaces.admin.mac: duplicate MAC address, already used at nodes[4].interfaces.admin.mac"),
    ("cluster.sls", "image: compute", "image: gpu", "nodes[4].image: is not a declared diskless image"),
]


@pytest.mark.parametrize("sls,old,new,line", MISTAKES, ids=[m[3] or "vrid-reuse-on-other-l2" for m in MISTAKES])
def test_each_mistake_exits_1_with_one_line(tmp_path, sls, old, new, line):
    pillar = pillar_copy(tmp_path)
    replace(pillar / sls, old, new)
    out = subprocess.run(CHECK + [str(pillar)], capture_output=True, text=True)
    if line is None:
        assert out.returncode == 0, out.stderr
        return
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), lines
    assert "Traceback" not in out.stderr


def test_vrid_reused_on_the_same_network_fails(tmp_path):
    pillar = pillar_copy(tmp_path)
    replace(pillar / "keepalived.sls", "vrid: 52\n      network: ib", "vrid: 51\n      network: wan")
    replace(pillar / "keepalived.sls", "hosts: labnat[1-2]", "hosts: labnat[1-2]")
    replace(pillar / "keepalived.sls", "virtual_ips: [10.13.0.30/16]", "virtual_ips: [10.12.0.30/24]")
    out = subprocess.run(CHECK + [str(pillar)], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "keepalived.instances[1].vrid: duplicate VRID on this L2 network, already used at "
        "keepalived.instances[0].vrid (got 51)"]


def test_per_host_pillar_is_checked_with_the_host_named(tmp_path):
    """A pillar file assigned to some hosts only is rendered and checked for those hosts."""
    pillar = pillar_copy(tmp_path)
    (pillar / "cn_override.sls").write_text("node:\n  resolver:\n    nameservers: []\n")
    replace(pillar / "top.sls", "    - node\n", "    - node\n  'labcn*':\n    - cn_override\n")
    out = subprocess.run(CHECK + [str(pillar)], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "labcn1,labcn2: node.resolver.nameservers: List should have at least 1 item after validation, not 0 (got [])"]


def test_yaml_error_is_one_plain_line(tmp_path):
    pillar = pillar_copy(tmp_path)
    (pillar / "node.sls").write_text((pillar / "node.sls").read_text() + "broken: [\n")
    out = subprocess.run(CHECK + [str(pillar)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "node" in out.stderr


def test_pre_commit_hook_rejects_a_bad_staged_pillar(tmp_path):
    repo = tmp_path / "site-pillar"
    shutil.copytree(ROOT / "pillar", repo)
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([str(ROOT / "tools" / "install-hook"), str(repo)], check=True, capture_output=True)
    subprocess.run(git + ["add", "."], check=True)
    good = subprocess.run(git + ["commit", "-qm", "example"], capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    replace(repo / "lvs.sls", "{host: labfe3, weight: 100}", "{host: labfe3, weight: -1}")
    subprocess.run(git + ["add", "lvs.sls"], check=True)
    bad = subprocess.run(git + ["commit", "-qm", "bad weight"], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "lvs.services[0].real_servers[2].weight: must be 0..65535 (got -1)" in bad.stderr
    log = subprocess.run(git + ["log", "--oneline"], capture_output=True, text=True).stdout
    assert len(log.splitlines()) == 1
