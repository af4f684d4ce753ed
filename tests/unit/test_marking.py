"""The nft marking table as data: render, parse recorded `nft -j` output, plan; accounts resolution."""

from __future__ import annotations

import grp
import pwd
from pathlib import Path

import hpc_accounts
import hpc_marking
from hpc_marking import MarkSet

DATA = Path(__file__).parent / "data"
TWO = hpc_marking.desired([MarkSet("alice", 1, frozenset({1001, 1002})), MarkSet("cms", 2, frozenset())])


def test_recorded_listing_parses_to_the_model_it_was_made_from():
    assert hpc_marking.parse((DATA / "nft-mark-two-sets.json").read_text()) == TWO
    assert hpc_marking.plan(TWO, hpc_marking.parse((DATA / "nft-mark-two-sets.json").read_text())) == []


def test_rendered_file_replaces_the_table_in_one_transaction():
    text = hpc_marking.render(TWO)
    assert text.startswith("table inet hpcnet_mark\ndelete table inet hpcnet_mark\n")
    assert "        ct mark { 0x1, 0x2 } meta mark set ct mark\n" in text
    assert "        meta mark 0 meta skuid @alice meta mark set 0x1 ct mark set meta mark\n" in text
    assert "elements = { 1001, 1002 }" in text


def test_membership_change_replaces_the_table():
    have = hpc_marking.parse((DATA / "nft-mark-two-sets.json").read_text())
    want = hpc_marking.desired([MarkSet("alice", 1, frozenset({1001, 1002, 1003})), MarkSet("cms", 2)])
    (change,) = hpc_marking.plan(want, have)
    assert change.describe() == ("update table inet hpcnet_mark: alice fwmark 0x1 uids [1001, 1002, 1003]"
                                 "; cms fwmark 0x2 uids []")


def test_a_rule_added_by_hand_is_drift():
    listing = (DATA / "nft-mark-two-sets.json").read_text()
    import json

    data = json.loads(listing)
    data["nftables"].append({"rule": {"family": "inet", "table": "hpcnet_mark", "chain": "output",
                                      "expr": [{"accept": None}]}})
    have = hpc_marking.parse(data)
    assert have.unknown == 1 and hpc_marking.plan(TWO, have) != []


def test_absent_table_and_nothing_wanted():
    assert hpc_marking.parse('{"nftables": [{"metainfo": {}}]}') is None
    assert hpc_marking.plan(hpc_marking.desired([]), None) == []
    assert [c.describe() for c in hpc_marking.plan(None, TWO)] == ["delete table inet hpcnet_mark"]


def _pw(name, uid, gid):
    return pwd.struct_passwd((name, "x", uid, gid, "", "/", "/bin/sh"))


def test_group_members_primary_and_supplementary_become_uids():
    users = {"aliprod": _pw("aliprod", 2001, 2000), "alise": _pw("alise", 2002, 100),
             "bob": _pw("bob", 2003, 100)}
    groups = {"alice": grp.struct_group(("alice", "x", 2000, ["alise"]))}
    resolved = hpc_accounts.resolve(["rgrosso"], ["alice", "cms"], getpwnam=users.__getitem__,
                                    getgrnam=groups.__getitem__, getpwall=lambda: list(users.values()))
    assert resolved.uids == {2001, 2002}  # aliprod by primary group, alise as a supplementary member
    assert resolved.missing == ("user rgrosso", "group cms")
