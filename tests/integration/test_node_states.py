"""The node states and the validation gate, applied through a real master to real minions."""

from __future__ import annotations

from pathlib import Path

import pytest


def apply(cli, minion, *args, **kwargs):
    ret = cli.run("state.apply", *args, minion_tgt=minion, **kwargs)
    assert isinstance(ret.data, dict), ret
    return ret.data


def changed(states: dict) -> list[str]:
    return sorted(v["__id__"] for v in states.values() if v.get("changes"))


def failed(states: dict) -> list[str]:
    return sorted(v["__id__"] for v in states.values() if v["result"] is False)


def mounted(path: str) -> bool:
    return any(line.split()[4] == path for line in Path("/proc/self/mountinfo").read_text().splitlines())


def scratch_path(pillar_dir: Path) -> str:
    return next(line.split()[-1] for line in (pillar_dir / "node.sls").read_text().splitlines()
                if line.strip().startswith("- path:"))


def test_highstate_applies_node_basics(salt_cli, cn1, pillar_dir, site_marker):
    states = apply(salt_cli, cn1)
    assert failed(states) == []
    assert Path(site_marker).read_text().strip() == "site state ran"  # the site's own formula is in the highstate
    resolv = Path("/etc/resolv.conf").read_text()
    assert resolv == salt_cli.run("node.resolv_conf", minion_tgt=cn1).data
    assert "options rotate timeout:1 attempts:2" in resolv
    hosts = Path("/etc/hosts").read_text()
    assert "10.11.0.41\tlabcn1.lab.hpc labcn1\n" in hosts and "10.13.1.2\tlabcn2-ib\n" in hosts
    scratch = scratch_path(pillar_dir)
    assert mounted(scratch)
    assert any(line.split()[1] == scratch for line in Path("/etc/fstab").read_text().splitlines() if line.split())


def test_second_highstate_changes_nothing(salt_cli, cn1):
    apply(salt_cli, cn1)
    states = apply(salt_cli, cn1)
    assert failed(states) == [] and changed(states) == []


def test_test_mode_predicts_exactly_what_a_real_run_does(salt_cli, cn1):
    apply(salt_cli, cn1)
    Path("/etc/hosts").write_text("127.0.0.1 localhost\n")
    predicted = apply(salt_cli, cn1, "test=True")
    assert Path("/etc/hosts").read_text() == "127.0.0.1 localhost\n"
    would_change = sorted(v["__id__"] for v in predicted.values() if v["result"] is None)
    assert would_change == ["node-config-file-hosts"]
    assert changed(apply(salt_cli, cn1)) == would_change


def test_resolv_conf_is_stable_per_host_and_differs_between_hosts(salt_cli, cn1, cn2):
    apply(salt_cli, cn1)
    first = Path("/etc/resolv.conf").read_text()
    apply(salt_cli, cn2)
    other = Path("/etc/resolv.conf").read_text()
    apply(salt_cli, cn1)
    again = Path("/etc/resolv.conf").read_text()
    servers = lambda text: [line.split()[1] for line in text.splitlines() if line.startswith("nameserver")]  # noqa: E731
    assert servers(first) == servers(again)
    assert servers(first) != servers(other)
    assert sorted(servers(first)) == sorted(servers(other))


@pytest.fixture
def broken_pillar(pillar_dir, salt_cli, cn1):
    """A pillar that would change /etc/hosts (a new entry) and also holds two mistakes."""
    node, lvs = pillar_dir / "node.sls", pillar_dir / "lvs.sls"
    saved = {p: p.read_text() for p in (node, lvs)}
    node.write_text(saved[node].replace("networks: [admin, wan, ib]",
                                        "networks: [admin, wan, ib]\n    extra: {licence: 10.11.0.99}"))
    lvs.write_text(saved[lvs].replace("{host: labfe3, weight: 100}", "{host: labfe3, weight: -1}")
                   .replace("port: 22", "port: 0"))
    salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt=cn1)
    yield
    for path, text in saved.items():
        path.write_text(text)
    salt_cli.run("saltutil.refresh_pillar", "wait=True", minion_tgt=cn1)


def test_bad_pillar_fails_the_gate_and_changes_nothing(salt_cli, cn1, broken_pillar, site_marker):
    """Our formulas render nothing on a bad pillar; a site's own state (site.marker, which never
    reads our pillar) still renders, and only the gate's failhard keeps it from running."""
    Path(site_marker).unlink(missing_ok=True)
    before = {p: Path(p).read_text() for p in ("/etc/hosts", "/etc/resolv.conf", "/etc/fstab")}
    for mode in (("test=True",), ()):
        states = apply(salt_cli, cn1, *mode)
        gate = next(v for v in states.values() if v["__id__"] == "hpc-validate-hpc-pillar_valid")
        assert gate["result"] is False
        assert "lvs.services[0].real_servers[2].weight: must be 0..65535 (got -1)" in gate["comment"]
        assert "lvs.services[0].port: must be 1..65535 (got 0)" in gate["comment"]
        # Salt ignores failhard under test=True (salt/state.py check_failhard): the site's state
        # says what it would do; none of ours does, since none renders.
        assert changed(states) == (["site-marker-file-managed"] if mode else [])
    # the real run: failhard ends it at the gate, no other state runs or is even listed
    assert [v["__id__"] for v in states.values()] == ["hpc-validate-hpc-pillar_valid"]
    assert not Path(site_marker).exists()
    assert {p: Path(p).read_text() for p in before} == before
