"""keepalived.conf rendered per host; secrets reach only that file and never an error message."""

from __future__ import annotations

from testlib import mutate

import hpc_keepalived
import hpc_pillar


def render(pillar, host, auth=None):
    sections = hpc_pillar.load(pillar)
    return hpc_keepalived.render(hpc_pillar.inventory(pillar)[host], sections["keepalived"], auth)


def directors_on_vrrpv2(pillar, secret=None):
    """The directors' instance as a site that keeps VRRPv2 (1 s adverts) and its auth_pass."""
    data = mutate(pillar, "keepalived.instances.0.vrrp_version", 2)
    data = mutate(data, "keepalived.instances.0.advert_int", 1)
    return mutate(data, "secrets", {"keepalived": {"lvs_vip": secret}}) if secret else data


def test_nat_router_gets_its_instance_with_vrrpv3(pillar):
    text = render(pillar, "labnat2")
    assert "vrrp_instance nat_gw {" in text and "vrrp_instance lvs_vip" not in text
    for line in ("interface ib0", "virtual_router_id 52", "priority 100", "advert_int 0.05", "version 3",
                 "10.13.0.30/16 dev ib0", 'notify "/etc/keepalived/hpc-notify nat_gw"'):
        assert f"    {line}\n" in text or f"        {line}\n" in text, line


def test_sub_second_vrrp_runs_at_high_priority_and_one_second_does_not(pillar):
    assert "    vrrp_priority -20\n" in render(pillar, "labnat1")
    assert "    vrrp_priority -20\n" in render(pillar, "lablvs1")
    assert "vrrp_priority" not in render(directors_on_vrrpv2(pillar), "lablvs1")  # advert_int 1
    data = mutate(pillar, "keepalived.fast_nice", 0)
    assert "vrrp_priority" not in render(data, "labnat1")


def test_v2_instance_carries_its_auth_pass(pillar):
    assert "auth_pass" not in render(pillar, "lablvs1", {"lvs_vip": "s3cret"})  # VRRPv3: none
    text = render(directors_on_vrrpv2(pillar), "lablvs1", {"lvs_vip": "s3cret"})
    assert "priority 150" in text and "auth_pass s3cret" in text and "interface eth1" in text


def test_host_outside_every_instance_gets_no_config(pillar):
    assert render(pillar, "labcn1") == ""


def test_secret_values_are_never_printed(pillar):
    data = directors_on_vrrpv2(pillar, "much-too-long-secret")
    lines = [str(e) for e in hpc_pillar.validate(data)]
    assert lines == ["secrets.keepalived.lvs_vip: String should have at most 8 characters"]
    assert "much-too-long" not in "".join(lines)


def test_secret_for_a_vrrpv3_instance_is_refused(pillar):
    data = mutate(pillar, "secrets", {"keepalived": {"nat_gw": "x"}})
    assert [str(e) for e in hpc_pillar.validate(data)] == [
        "secrets.keepalived.nat_gw: VRRPv3 has no authentication: remove this secret"]


def test_nat_gateway_carries_its_outside_address_on_the_outside_interface(pillar):
    text = render(pillar, "labnat1")
    assert "        10.13.0.30/16 dev ib0\n        10.12.0.30/24 dev eth1\n" in text


def test_other_vip_outside_its_network_is_named(pillar):
    data = mutate(pillar, "keepalived.instances.1.other_virtual_ips", {"wan": ["10.13.0.99/24"]})
    assert [str(e) for e in hpc_pillar.validate(data)] == [
        "keepalived.instances[1].other_virtual_ips.wan[0]: is outside wan 10.12.0.0/24 (got '10.13.0.99/24')"]


def test_virtual_addresses_are_what_a_dead_keepalived_may_leave_behind(pillar):
    sections = hpc_pillar.load(pillar)
    host = hpc_pillar.inventory(pillar)["labnat1"]
    assert hpc_keepalived.virtual_addresses(host, sections["keepalived"]) == [
        ("10.13.0.30/16", "ib0"), ("10.12.0.30/24", "eth1")]
