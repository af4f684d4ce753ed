"""The boot server's dnsmasq configuration (hpc_diskless): declared nodes boot; an unknown MAC gets
nothing, or with discovery an address and no boot file."""

from __future__ import annotations

from testlib import example_pillar, mutate

import hpc_diskless
import hpc_pillar


def _conf(pillar: dict) -> list[str]:
    sections, inventory = hpc_pillar.load(pillar), hpc_pillar.inventory(pillar)
    return hpc_diskless.dnsmasq_conf(inventory["labboot1"], "admin", sections["networks"]["admin"], inventory,
                                     sections["diskless"]).splitlines()


def test_only_declared_nodes_get_an_answer_and_only_they_boot():
    lines = _conf(example_pillar())
    assert "dhcp-ignore=tag:!known" in lines and not [x for x in lines if x.startswith("dhcp-range=set:")]
    assert "dhcp-host=52:54:00:0b:00:41,labcn1,10.11.0.41" in lines
    boots = [x for x in lines if x.startswith("dhcp-boot=")]
    assert boots and all(x.startswith("dhcp-boot=tag:known,") for x in boots)
    assert "dhcp-boot=tag:known,tag:ipxe,http://10.11.0.5/hpcnet/boot.ipxe" in boots


def test_ipxe_is_told_not_to_wait_for_a_proxydhcp_server():
    """Without no-pxedhcp, iPXE goes on discovering for ProxyDHCP offers that never come."""
    assert "dhcp-option=encap:175,176,1b" in _conf(example_pillar())


def test_with_discovery_unknown_machines_get_an_address_from_the_range_and_still_no_boot_file():
    lines = _conf(mutate(example_pillar(), "diskless.discovery", {"start": "10.11.0.150", "end": "10.11.0.199"}))
    assert "dhcp-ignore=tag:!known" not in lines
    assert "dhcp-range=set:discovery,10.11.0.150,10.11.0.199,255.255.255.0,600s" in lines
    assert all(x.startswith("dhcp-boot=tag:known,") for x in lines if x.startswith("dhcp-boot="))
