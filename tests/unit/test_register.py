"""Registering new nodes from DHCP leases (hpc_register): names in lease order, addresses after
the role's highest, nothing reused, and the example inventory file edited in place."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from testlib import example_pillar

import hpc_pillar
import hpc_register
from hpc_types import expand

CLUSTER = Path(__file__).resolve().parents[2] / "pillar" / "cluster.sls"
LEASES = """\
1764755000 52:54:00:aa:00:02 10.11.0.152 * 01:52:54:00:aa:00:02
1764754000 52:54:00:AA:00:01 10.11.0.151 * *
1764756000 52:54:00:0b:00:41 10.11.0.41 labcn1 *
duid 00:01:00:01:2c:3b:aa:bb:52:54:00:0b:00:05
1764757000 52:54:00:aa:00:01 10.11.0.151 * *
"""


def _propose(leases=LEASES, names="labcn[1-4]", first_ip=None):
    inventory = hpc_pillar.inventory(example_pillar())
    return hpc_register.propose(hpc_register.parse_leases(leases), inventory, expand(names), "cn", "admin",
                                "10.11.0.0/24", first_ip)


def test_unknown_macs_get_the_free_names_in_lease_order_and_the_next_free_addresses():
    found = _propose()
    # labcn1 is known (its MAC too); the renewed lease of :01 counts once, at its first time.
    assert [(r.name, r.mac, r.ip) for r in found] == [("labcn3", "52:54:00:aa:00:01", "10.11.0.43"),
                                                       ("labcn4", "52:54:00:aa:00:02", "10.11.0.44")]


def test_too_few_free_names_or_a_first_ip_outside_the_network_is_refused():
    with pytest.raises(ValueError, match=r"^2 unknown machines but 1 free names in the nodeset \(labcn3\)$"):
        _propose(names="labcn[1-3]")
    with pytest.raises(ValueError, match=r"^first_ip 10\.12\.0\.5 is not in the admin network"):
        _propose(first_ip="10.12.0.5")
    assert [r.ip for r in _propose(first_ip="10.11.0.41")] == ["10.11.0.43", "10.11.0.44"]  # .41, .42 taken


def test_the_inventory_file_keeps_its_comments_and_gains_the_new_groups_which_validate():
    text = CLUSTER.read_text()
    new = hpc_register.groups(_propose(), "cn", "admin", "eth0", "compute")
    edited = hpc_register.append_groups(text, new)
    assert edited.startswith(text.rstrip("\n").split("\nnodes:")[0])
    assert all(line in edited for line in text.splitlines())  # nothing of the old file lost
    pillar = {**example_pillar(), "nodes": yaml.safe_load(edited)["nodes"]}
    inventory = hpc_pillar.inventory(pillar)
    assert inventory["labcn4"].interfaces["admin"].mac == "52:54:00:aa:00:02" and inventory["labcn4"].image == "compute"
    assert hpc_pillar.load(pillar)  # the grown pillar still validates


def test_a_file_without_a_nodes_list_is_left_alone():
    with pytest.raises(ValueError, match="no top-level 'nodes:' list"):
        hpc_register.append_groups("cluster:\n  name: x\n", [{"nodeset": "a"}])
    with pytest.raises(ValueError, match="did not parse back"):
        hpc_register.append_groups("nodes:\n    - {nodeset: a}\n", [{"nodeset": "b"}])


def test_the_master_may_sign_the_keys_of_diskless_nodes_by_name_and_boot_mac_only():
    inventory = hpc_pillar.inventory(example_pillar())
    assert hpc_register.autosign_values(inventory, "admin", ["labcn2", "labcn1", "labcn9"]) == [
        "labcn1 52:54:00:0b:00:41", "labcn2 52:54:00:0b:00:42"]


ALLOWED = ["labcn1 52:54:00:0b:00:41", "labcn2 52:54:00:0b:00:42"]


@pytest.mark.parametrize(("minion", "grains", "ok", "ours", "reason"), [
    ("labcn1", {"hpcnet_boot": "labcn1 52:54:00:0B:00:41"}, True, True, "registered diskless node"),
    # a registered pair under another id: a frontend whose key is still pending must not get it
    ("labfe1", {"hpcnet_boot": "labcn1 52:54:00:0b:00:41"}, False, True, "names 'labcn1', but the key is for 'labfe1'"),
    ("labcn1", {"hpcnet_boot": "labcn1 52:54:00:0b:00:42"}, False, True, "no registered diskless node"),
    ("labcn9", {"hpcnet_boot": "labcn9 52:54:00:0b:00:49"}, False, True, "no registered diskless node"),
    ("labfe1", None, False, False, "no hpcnet_boot grain"),
    ("labfe1", {"hpcnet_boot": ""}, False, False, "no hpcnet_boot grain"),
    ("labfe1", {"hpcnet_boot": ["labfe1"]}, False, False, "no hpcnet_boot grain"),
])
def test_a_key_is_a_diskless_nodes_only_by_its_own_name_and_boot_mac(minion, grains, ok, ours, reason):
    verdict = hpc_register.key_verdict(minion, grains, ALLOWED)
    assert (verdict.ok, verdict.ours) == (ok, ours) and reason in verdict.reason, verdict
