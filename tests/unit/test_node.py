"""Node basics as data: fqdn_rotate, resolv.conf, /etc/hosts, mounts per host."""

from __future__ import annotations

from collections import Counter

import hpc_node
import hpc_pillar


def test_fqdn_rotate_is_stable_per_host_and_spreads_across_hosts():
    servers = ["a", "b", "c"]
    assert hpc_node.fqdn_rotate(servers, "cn001.x") == hpc_node.fqdn_rotate(servers, "cn001.x")
    firsts = Counter(hpc_node.fqdn_rotate(servers, f"cn{i:03d}.x")[0] for i in range(1, 301))
    assert set(firsts) == set(servers)
    assert all(70 <= n <= 130 for n in firsts.values()), firsts  # ~100 each
    assert sorted(hpc_node.fqdn_rotate(servers, "cn002.x")) == servers


def test_resolv_conf_content(pillar):
    sections = hpc_pillar.load(pillar)
    text = hpc_node.resolv_conf(sections["node"].resolver, "labcn2.lab.hpc")
    assert text.splitlines()[1:] == [
        "search lab.hpc",
        "nameserver 10.11.0.102",
        "nameserver 10.11.0.103",
        "nameserver 10.11.0.101",
        "options rotate timeout:1 attempts:2",
    ]


def test_hosts_file_maps_fqdn_to_the_first_network(pillar):
    sections = hpc_pillar.load(pillar)
    text = hpc_node.hosts_file(hpc_pillar.inventory(pillar), sections["node"].hosts_file, "lab.hpc")
    lines = text.splitlines()
    assert "10.11.0.41\tlabcn1.lab.hpc labcn1" in lines
    assert "10.13.1.1\tlabcn1-ib" in lines
    assert "10.12.0.22\tlabfe2-wan" in lines
    assert not any(line.endswith("labcn1-wan") for line in lines)


def test_mounts_apply_to_their_hosts_only(pillar):
    sections, inventory = hpc_pillar.load(pillar), hpc_pillar.inventory(pillar)
    assert [m.path for m in hpc_node.mounts_for("labcn2", sections["node"].mounts, inventory)] == ["/scratch"]
    assert hpc_node.mounts_for("labfe1", sections["node"].mounts, inventory) == []
