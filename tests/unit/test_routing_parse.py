"""Netlink rule messages to the model: which rules are ours to model, which are not.

The attributes are those the kernel sent for `ip rule` commands (read with pyroute2 on this
machine; FRA_SUPPRESS_PREFIXLEN -1 and FRA_FWMASK are on every such rule)."""

from __future__ import annotations

import pytest

from hpc_routing import Rule
from hpc_routing_kernel import parse_rule


class Msg(dict):
    """What parse_rule reads of a pyroute2 message: header fields by [], NLAs by get()."""

    def __init__(self, action: int = 1, table: int = 0, src_len: int = 0, **nlas) -> None:
        super().__init__(action=action, table=table, src_len=src_len)
        self.nlas = nlas

    def get(self, name, default=None):
        return self.nlas.get(name, default)


COMMON = {"FRA_SUPPRESS_PREFIXLEN": 0xFFFFFFFF, "FRA_PROTOCOL": 0}


@pytest.mark.parametrize(("what", "nlas", "rule"), [
    ("fwmark", {"FRA_TABLE": 201, "FRA_PRIORITY": 100, "FRA_FWMARK": 1, "FRA_FWMASK": 0xFFFFFFFF},
     Rule(100, 1, 201)),
    ("uidrange", {"FRA_TABLE": 201, "FRA_PRIORITY": 100, "FRA_UID_RANGE": "3001:3005"},
     Rule(100, 0, 201, (3001, 3005))),
    ("both", {"FRA_TABLE": 201, "FRA_PRIORITY": 100, "FRA_FWMARK": 1, "FRA_UID_RANGE": "3001:3001"},
     Rule(100, 1, 201, (3001, 3001))),
    ("main (no selector)", {"FRA_TABLE": 254, "FRA_PRIORITY": 32766}, None),
    ("masked fwmark", {"FRA_TABLE": 201, "FRA_FWMARK": 1, "FRA_FWMASK": 0xFF}, None),
    ("from a source (a NAT real server's return path)",
     {"FRA_TABLE": 210, "FRA_PRIORITY": 1000, "FRA_SRC": "10.11.0.21", "src_len": 32},
     Rule(1000, 0, 210, src="10.11.0.21/32")),
    ("to a destination", {"FRA_TABLE": 201, "FRA_FWMARK": 1, "FRA_DST": "10.0.0.0"}, None),
    ("suppress_prefixlength", {"FRA_TABLE": 201, "FRA_FWMARK": 1, "FRA_SUPPRESS_PREFIXLEN": 0}, None),
])
def test_parse_rule(what, nlas, rule):
    assert parse_rule(Msg(**{**COMMON, **nlas})) == rule, what


def test_a_rule_that_does_not_look_up_a_table_is_not_ours():
    assert parse_rule(Msg(action=2, FRA_FWMARK=1, **COMMON)) is None  # goto
