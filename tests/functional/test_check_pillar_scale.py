"""`make check-pillar` in linear time: few renders, one validation per distinct pillar, the same report.

Renders happen once per set of hosts the top file gives the same files, when those files cannot
depend on the minion; a template that may (it names grains, ...) is rendered for every host.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testlib import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import check_pillar  # noqa: E402

import hpc_pillar  # noqa: E402

CHECK = [sys.executable, str(ROOT / "tools" / "check_pillar.py")]
EXAMPLE_HOSTS = 14
EMPTY_NAMESERVERS = "node.resolver.nameservers: List should have at least 1 item after validation, not 0 (got [])"
NAMESERVERS = "nameservers: [10.11.0.101, 10.11.0.102, 10.11.0.103]"


def pillar_copy(tmp_path: Path, compute_nodes: int = 2) -> Path:
    """The example pillar; with more compute nodes (the admin network widened so that they fit)."""
    dest = tmp_path / "pillar"
    shutil.copytree(ROOT / "pillar", dest)
    if compute_nodes != 2:
        replace(dest / "cluster.sls", "cidr: 10.11.0.0/24", "cidr: 10.11.0.0/16")
        replace(dest / "cluster.sls", "ip: 10.11.0.41, mac: '52:54:00:0b:00:41'",
                "ip: 10.11.1.1, mac: '52:54:00:0d:00:01'")
        for sls in dest.glob("*.sls"):
            sls.write_text(sls.read_text().replace("labcn[1-2]", f"labcn[1-{compute_nodes}]"))
    return dest


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def run(pillar: Path) -> subprocess.CompletedProcess:
    return subprocess.run(CHECK + [str(pillar)], capture_output=True, text=True)


@pytest.fixture
def counted(monkeypatch):
    """Counts the pillar renders and validations of check_pillar.check in this process."""
    counts = {"renders": 0, "validations": 0}
    render, validate = check_pillar.Renderer.render, hpc_pillar.validate

    def counting_render(self, *args, **kwargs):
        counts["renders"] += 1
        return render(self, *args, **kwargs)

    def counting_validate(pillar):
        counts["validations"] += 1
        return validate(pillar)

    monkeypatch.setattr(check_pillar.Renderer, "render", counting_render)
    monkeypatch.setattr(hpc_pillar, "validate", counting_validate)
    return counts


def test_a_template_on_the_minion_id_is_reported_for_that_host_only(tmp_path):
    """Only labcn2 gets no nameservers: the file assigned to every host is rendered for every host."""
    pillar = pillar_copy(tmp_path)
    replace(pillar / "node.sls", NAMESERVERS,
            "nameservers: {{ '[]' if grains['id'] == 'labcn2' else '[10.11.0.101, 10.11.0.102, 10.11.0.103]' }}")
    out = run(pillar)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.splitlines() == [f"labcn2: {EMPTY_NAMESERVERS}"]


def test_a_top_file_on_the_minion_id_is_followed_per_host(tmp_path):
    """The top file itself gives labcn2 (and it alone) a bad file."""
    pillar = pillar_copy(tmp_path)
    (pillar / "cn2.sls").write_text("node:\n  resolver:\n    nameservers: []\n")
    replace(pillar / "top.sls", "    - node\n",
            "    - node\n{% if grains['id'] == 'labcn2' %}\n  'labcn2':\n    - cn2\n{% endif %}\n")
    out = run(pillar)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.splitlines() == [f"labcn2: {EMPTY_NAMESERVERS}"]


def test_a_grain_targeted_file_names_its_hosts(tmp_path):
    pillar = pillar_copy(tmp_path)
    (pillar / "fe.sls").write_text("node:\n  resolver:\n    nameservers: []\n")
    replace(pillar / "top.sls", "    - node\n", "    - node\n  'hpc_role:fe':\n    - match: grain\n    - fe\n")
    out = run(pillar)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.splitlines() == [f"labfe1,labfe2,labfe3: {EMPTY_NAMESERVERS}"]


def test_a_host_its_own_pillar_forgets_is_reported(tmp_path):
    """As the gate does: labclient1's pillar is valid but its nodes do not declare labclient1."""
    import yaml

    pillar = pillar_copy(tmp_path)
    nodes = yaml.safe_load((pillar / "cluster.sls").read_text())["nodes"]
    (pillar / "client.sls").write_text(yaml.safe_dump({"nodes": [g for g in nodes if g["nodeset"] != "labclient1"]}))
    replace(pillar / "top.sls", "    - node\n", "    - node\n  'labclient1':\n    - client\n")
    out = run(pillar)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.splitlines() == [
        "labclient1: nodes: minion labclient1 is not declared in any nodeset (got 'labclient1')"]


@pytest.mark.parametrize("compute_nodes", [2, 300])
def test_renders_and_validations_do_not_grow_with_the_hosts(tmp_path, counted, compute_nodes):
    """Two sets of hosts ('*', '*' + 'labfe*': the host keys): two renders each (first and last
    host), whatever the size; two distinct pillars, each validated once."""
    code, lines = check_pillar.check(pillar_copy(tmp_path, compute_nodes))
    assert (code, lines) == (0, [])
    assert counted == {"renders": 4, "validations": 2}


def test_a_mistake_in_a_big_cluster_is_reported_once_per_line(tmp_path, counted):
    pillar = pillar_copy(tmp_path, 300)
    (pillar / "cn.sls").write_text("node:\n  resolver:\n    nameservers: []\n")
    replace(pillar / "top.sls", "    - node\n", "    - node\n  'labcn*':\n    - cn\n")
    code, lines = check_pillar.check(pillar)
    assert code == 1
    assert lines == [",".join(f"labcn{i}" for i in range(1, 301)) + ": " + EMPTY_NAMESERVERS]
    assert counted["renders"] == 6 and counted["validations"] == 3


def test_two_renders_that_differ_send_every_host_of_the_set_to_its_own_render(tmp_path, counted, monkeypatch):
    """If a file we believe the same for every host is not, the first and last hosts' renders differ:
    then every host of the set is rendered (here labcn2's mistake would be missed otherwise)."""
    monkeypatch.setattr(check_pillar, "minion_independent", lambda text: True)  # believe every file static
    pillar = pillar_copy(tmp_path)
    replace(pillar / "node.sls", NAMESERVERS,
            "nameservers: {{ '[]' if grains['id'] in ('labcn2', 'labinet1') else '[10.11.0.101]' }}")
    code, lines = check_pillar.check(pillar)
    assert (code, lines) == (1, [f"labcn2,labinet1: {EMPTY_NAMESERVERS}"])
    # every host of the '*' set, and the first and last of each other set (labfe2 is not rendered:
    # labfe1 and labfe3 agree)
    assert counted["renders"] == EXAMPLE_HOSTS - 1


TOP = """\
base:
  '*':
    - cluster
  'lablvs*':
    - lvs
  'G@hpc_role:fe or labnat1':
    - frontend
  'hpc_role:cn':
    - match: grain
    - node
  'labboot1,labfw1':
    - match: list
    - diskless
  'lab(inet|client)1':
    - match: pcre
    - natrouter
  'labcn* and not labcn1':
    - keepalived
  'cnodes':
    - match: nodegroup
    - policy_routing
"""


def test_top_matching_is_salt_s_for_every_host(tmp_path):
    """The matches computed for each host from one rendered top are those of Salt's own Pillar for that host."""
    pillar = pillar_copy(tmp_path)
    (pillar / "top.sls").write_text(TOP)
    renderer = check_pillar.Renderer(pillar, tmp_path / "cache")
    renderer.opts["nodegroups"] = {"cnodes": "L@labcn1,labcn2"}
    pattern = r"^(?P<prefix>lab)(?P<role>[a-z]+)(?P<id>[0-9]+)$"
    matcher = check_pillar.TopMatcher(renderer.pillar(check_pillar.PROBE_ID, pattern))
    hosts = ["labadm1", "lablvs1", "lablvs2", "labfe1", "labfe3", "labnat1", "labnat2", "labcn1", "labcn2",
             "labboot1", "labfw1", "labclient1", "labinet1"]
    ours = {host: matcher.matches(host, renderer.grains(host, pattern)) for host in hosts}  # as check() does
    for host in hosts:
        salt_pillar = renderer.pillar(host, pattern)
        expected = salt_pillar.top_matches(salt_pillar.get_top()[0])
        assert ours[host] == tuple((env, tuple(sls)) for env, sls in expected.items()), host
    seen = set(ours.values())
    matched = [set(sls) for ((_, sls),) in seen]
    assert set.union(*matched) == {"cluster", "lvs", "frontend", "node", "diskless", "natrouter", "keepalived",
                                   "policy_routing"}  # every matcher above matched some host...
    assert len(seen) == 7  # ... and not all of them


@pytest.mark.parametrize("text,independent", [
    ("node:\n  resolver: {nameservers: [10.0.0.1]}\n", True),
    ("cluster:\n  description: deployment, services, salt\n", True),  # plain YAML never depends
    ("{% set ns = ['10.0.0.1'] %}\nnode: {resolver: {nameservers: {{ ns }}}}\n", True),
    ("{% if grains['id'] == 'labcn2' %}x: 1{% endif %}\n", False),
    ("x: {{ salt['cmd.run']('hostname') }}\n", False),
    ("x: {{ opts['id'] }}\n", False),
    ("x: {{ pillar.get('a') }}\n", False),
    ("{% from 'map.jinja' import x %}\n", False),
    ("include:\n  - other\n", False),
    ("#!py\ndef run():\n    return {}\n", False),
    ("#!jinja|yaml\nx: 1\n", True),
    ("#!yaml | gpg\nx: 1\n", True),
])
def test_which_files_may_depend_on_the_minion(text, independent):
    assert check_pillar.minion_independent(text) is independent
