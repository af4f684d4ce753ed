"""The inventory's and the checks' per-host arithmetic gives what netaddr gives, without netaddr's cost per host."""

from __future__ import annotations

import netaddr
import pytest

import hpc_checks
import hpc_inventory


def netaddr_nth(first: str, index: int, kind: str) -> str:
    """What the i-th node got before: the first value parsed and counted up by netaddr, for every host."""
    if kind == "ip":
        return str(netaddr.IPAddress(first) + index)
    return str(netaddr.EUI(netaddr.EUI(first).value + index, dialect=netaddr.mac_unix_expanded))


@pytest.mark.parametrize("first,kind", [
    ("10.13.1.1", "ip"), ("10.11.0.250", "ip"), ("0.0.0.0", "ip"), ("192.168.255.254", "ip"),
    ("fd00::1", "ip"), ("fd00::ffff", "ip"), ("::ffff:10.0.0.1", "ip"),
    ("52:54:00:0b:00:41", "mac"), ("52:54:00:0b:ff:fe", "mac"), ("00:00:00:00:00:00", "mac"),
])
def test_counted_up_values_are_netaddr_s(first, kind):
    count = 600
    values = hpc_inventory._Values([first], count, kind)
    assert [values(i) for i in range(count)] == [netaddr_nth(first, i, kind) for i in range(count)]


def test_own_values_and_none():
    assert [hpc_inventory._Values(["10.0.0.9", "10.0.0.3"], 2, "ip")(i) for i in (0, 1)] == ["10.0.0.9", "10.0.0.3"]
    assert hpc_inventory._Values([], 5, "mac")(3) is None


@pytest.mark.parametrize("first,kind", [("255.255.255.254", "ip"), ("ff:ff:ff:ff:ff:fe", "mac")])
def test_overflow_is_left_to_netaddr(first, kind):
    values = hpc_inventory._Values([first], 4, kind)
    assert values(1) == netaddr_nth(first, 1, kind)
    try:
        expected = netaddr_nth(first, 3, kind)
    except Exception as exc:  # noqa: BLE001 - whatever netaddr does past the end, we do too
        with pytest.raises(type(exc)):
            values(3)
    else:
        assert values(3) == expected


@pytest.mark.parametrize("ip,cidr", [
    ("10.13.1.1", "10.13.0.0/16"), ("10.14.0.1", "10.13.0.0/16"), ("10.13.255.255", "10.13.0.0/16"),
    ("10.12.0.10/24", "10.12.0.0/24"), ("10.12.1.10/24", "10.12.0.0/24"), ("0.0.0.0", "0.0.0.0/0"),
    ("fd00::5", "fd00::/64"), ("fd01::5", "fd00::/64"), ("fd00::5/64", "fd00::/64"),
    ("10.0.0.1", "::/0"), ("::ffff:10.0.0.1", "10.0.0.0/8"), ("::a00:1", "10.0.0.0/8"),
])
def test_inside_a_network_as_netaddr_says(ip, cidr):
    assert hpc_checks._in(ip, cidr) == (netaddr.IPAddress(ip.split("/")[0]) in netaddr.IPNetwork(cidr))


def test_unknown_names_the_declared_only_when_few():
    few = hpc_checks._unknown("x", "c", {"b": 1, "a": 2}, "thing")
    assert str(few[0]) == "x: is not a declared thing (declared: a, b) (got 'c')"
    many = hpc_checks._unknown("x", "zz", {f"h{i}": i for i in range(13)}, "host")
    assert str(many[0]) == "x: is not a declared host (got 'zz')"
    assert hpc_checks._unknown("x", "h3", {f"h{i}": i for i in range(13)}, "host") == []
