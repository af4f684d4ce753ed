"""hpclab.dns: the site's nameservers the lab stands in for, from the pillar (the lab test that
they answer is tests/integration/lab/test_lab.py::test_the_pillars_nameservers_answer_as_a_sites_do)."""

from __future__ import annotations

import pytest
from testlib import example_pillar, mutate

from hpclab import cluster, dns


def _fw_ifaces(pillar):
    return cluster.topology(pillar).nodes["labfw1"].ifaces


def test_each_nameserver_goes_to_the_interface_on_its_network():
    pillar = mutate(example_pillar(), "node.resolver.nameservers", ["10.11.0.101", "10.12.0.53"])
    assert dns.addresses(pillar, _fw_ifaces(pillar)) == ["addr add 10.11.0.101/24 dev eth0",
                                                         "addr add 10.12.0.53/24 dev eth1"]


def test_a_nameserver_on_none_of_the_stand_ins_networks_is_named():
    pillar = mutate(example_pillar(), "node.resolver.nameservers", ["10.11.0.101", "192.0.2.53"])
    with pytest.raises(RuntimeError, match=r"node\.resolver\.nameservers: 192\.0\.2\.53 is on none"):
        dns.addresses(pillar, _fw_ifaces(pillar))


def test_dnsmasq_answers_the_clusters_names_on_those_addresses_and_forwards_nothing():
    pillar = example_pillar()
    argv = dns.dnsmasq_argv(pillar)
    assert "--listen-address=10.11.0.101,10.11.0.102,10.11.0.103" in argv
    assert {"--no-resolv", "--no-hosts", "--local=/lab.hpc/", "--bind-interfaces"} <= set(argv)
    assert "10.11.0.11\tlablvs1.lab.hpc lablvs1" in dns.names(pillar).splitlines()
