"""The hpc grains: role from the hostname convention, IB interfaces from /sys/class/net."""

from __future__ import annotations

import importlib.util

import pytest
from testlib import ROOT

spec = importlib.util.spec_from_file_location("hpc_grains", ROOT / "_grains" / "hpc.py")
grains = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grains)
LAB = "^(?P<prefix>lab)(?P<role>[a-z]+)(?P<id>[0-9]+)$"


@pytest.mark.parametrize("name,pattern,expected", [
    ("labcn1", LAB, {"prefix": "lab", "role": "cn", "id": "1"}),
    ("labfe12", LAB, {"prefix": "lab", "role": "fe", "id": "12"}),
    ("genbatch1", "^(?P<prefix>gen)(?P<role>[a-z]+)(?P<id>[0-9]+)$", {"prefix": "gen", "role": "batch", "id": "1"}),
    ("cn001", grains.DEFAULT_HOSTNAME_PATTERN, {"prefix": "", "role": "cn", "id": "001"}),
    ("admin", LAB, {}),
])
def test_hostname_convention(name, pattern, expected):
    assert grains._parse_hostname(name, pattern) == expected


def test_role_grains_come_from_the_minion_id(monkeypatch):
    monkeypatch.setattr(grains, "__opts__", {"id": "labnat2.lab.hpc", "hpc": {"hostname_pattern": LAB}},
                        raising=False)
    assert grains.role() == {"hpc_role": "nat", "hpc_node_id": "2", "hpc_prefix": "lab"}
    assert grains.cluster() == {"hpc_cluster": "lab"}


def _link(root, name, kind, state="up", carrier="1"):
    d = root / name
    d.mkdir()
    (d / "type").write_text(kind + "\n")
    (d / "operstate").write_text(state + "\n")
    (d / "carrier").write_text(carrier + "\n")
    (d / "mtu").write_text("2044\n")


def test_ib_interfaces_by_link_type_and_by_name(tmp_path, monkeypatch):
    _link(tmp_path, "ib0", "32")
    _link(tmp_path, "ibp65s0", "32", "down", "0")
    _link(tmp_path, "eth0", "1")
    _link(tmp_path, "ib1", "1")  # the lab's veth named like IB
    monkeypatch.setattr(grains, "__opts__", {"id": "labcn1"}, raising=False)
    assert sorted(grains.ib_interfaces(str(tmp_path))["ib_interfaces"]) == ["ib0", "ibp65s0"]
    monkeypatch.setattr(grains, "__opts__", {"id": "labcn1", "hpc": {"ib_interface_pattern": "^ib[0-9]+$"}},
                        raising=False)
    found = grains.ib_interfaces(str(tmp_path))["ib_interfaces"]
    assert sorted(found) == ["ib0", "ib1", "ibp65s0"]
    assert found["ibp65s0"] == {"operstate": "down", "carrier": False, "ipoib": True, "mtu": 2044}
    assert found["ib1"]["ipoib"] is False
