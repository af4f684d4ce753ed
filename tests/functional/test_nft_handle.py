"""One suite for both nft table handles: the dict fake and the nft binary in a throwaway network
namespace, each over both tables of ours (the NAT routers' and policy routing's marking).

The refused tables are ones nftables 1.0.6 really refuses (checked by hand): an interface name
longer than 16 characters (nft itself) and a set name longer than 255 (the kernel, ERANGE). The
fake is told to refuse the same ones.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import hpc_marking
import hpc_natrouter
import hpc_nft
from hpc_inventory import Host, HostInterface
from hpc_marking import MarkSet
from hpc_nft import FakeNftTable, NftCodec, NftError, NftTable
from hpc_schema import NatRouter, Network

FOREIGN = ("inet", "foreign")
FOREIGN_TEXT = """table inet foreign {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport 22 accept
    }
}
"""


def _nat_table(outside: str = "eth2", snat: str | None = None) -> hpc_natrouter.Table:
    me = Host("labnat1", "nat", 0, {"in": HostInterface("in", "eth1", "10.252.1.1", None),
                                    "out": HostInterface("out", outside, "10.252.2.1", None)})
    nat = NatRouter.model_validate({"hosts": "labnat[1-2]", "inside": "in", "outside": "out",
                                    "vrrp_instance": "nat_gw", "snat_address": snat})
    networks = {"in": Network(cidr="10.252.1.0/24"), "out": Network(cidr="10.252.2.0/24")}
    return hpc_natrouter.desired(me, nat, networks)


def _nat_refused(table: hpc_natrouter.Table) -> str | None:
    names = [n for c in table.chains for r in c.rules for n in (r.iif, r.oif) if n]
    return "Error: String exceeds maximum length of 16" if any(len(n) > 16 for n in names) else None


def _mark_refused(marking: hpc_marking.Marking) -> str | None:
    too_long = any(len(s.name) > 255 for s in marking.sets)
    return "Error: Could not process rule: Numerical result out of range" if too_long else None


@dataclass(frozen=True)
class Case:
    """One table of ours: its codec and planner, two tables to apply, one nft refuses."""

    codec: NftCodec[Any]
    plan: Callable[[Any, Any], list]
    first: Any
    second: Any
    refused: Any
    refuse: Callable[[Any], str | None]


CASES = {
    "natrouter": lambda: Case(hpc_nft.natrouter_codec(), hpc_natrouter.plan, _nat_table(),
                              _nat_table(snat="10.252.2.100"), _nat_table(outside="x" * 20), _nat_refused),
    "marking": lambda: Case(hpc_nft.marking_codec(), hpc_marking.plan,
                            hpc_marking.desired([MarkSet("alice", 1, frozenset({1001, 1002})), MarkSet("cms", 2)]),
                            hpc_marking.desired([MarkSet("alice", 1, frozenset({1003})), MarkSet("bob", 3)]),
                            hpc_marking.desired([MarkSet("a" * 300, 1, frozenset({1001}))]), _mark_refused),
}


class FakeKernel:
    """The fake's side: one ruleset dict shared by every handle of a test."""

    def __init__(self) -> None:
        self.ruleset: dict[tuple[str, str], Any] = {}

    def handle(self, case: Case) -> FakeNftTable:
        return FakeNftTable(case.codec, refuse=case.refuse, ruleset=self.ruleset)

    def add_foreign(self) -> None:
        self.ruleset[FOREIGN] = FOREIGN_TEXT

    def tables(self) -> list[tuple[str, str]]:
        return list(self.ruleset)

    def listing(self, family: str, name: str) -> str | None:
        return repr(self.ruleset[(family, name)]) if (family, name) in self.ruleset else None


class NetnsKernel:
    """The real side: nft in network namespace ``name``; nothing of the host's is touched."""

    def __init__(self, name: str) -> None:
        self.name = name

    def nft(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name, "nft", *args], input=stdin,
                              capture_output=True, text=True, timeout=30)

    def handle(self, case: Case) -> NftTable:
        return NftTable(case.codec, netns=self.name)  # nft decides what it refuses

    def add_foreign(self) -> None:
        assert self.nft("-f", "-", stdin=FOREIGN_TEXT).returncode == 0

    def tables(self) -> list[tuple[str, str]]:
        items = json.loads(self.nft("-j", "list", "tables").stdout)["nftables"]
        return [(i["table"]["family"], i["table"]["name"]) for i in items if "table" in i]

    def listing(self, family: str, name: str) -> str | None:
        res = self.nft("list", "table", family, name)
        return res.stdout if res.returncode == 0 else None


@pytest.fixture(params=["fake", "netns"])
def kernel(request):
    if request.param == "fake":
        yield FakeKernel()
        return
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        pytest.skip("the real handle needs root, nft and ip (a throwaway network namespace)")
    name = f"n{secrets.token_hex(3)}-nft"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield NetnsKernel(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


@pytest.fixture(params=sorted(CASES))
def case(request) -> Case:
    return CASES[request.param]()


def _other(case: Case) -> Case:
    return CASES["marking" if case.codec.name == hpc_natrouter.TABLE else "natrouter"]()


def _ours(case: Case) -> tuple[str, str]:
    return case.codec.family, case.codec.name


def test_absent_table_reads_none(kernel, case):
    kernel.add_foreign()
    assert kernel.handle(case).read() is None


def test_applied_table_reads_back_as_planned(kernel, case):
    handle = kernel.handle(case)
    handle.apply(case.first)
    assert case.plan(case.first, handle.read()) == []


def test_applying_twice_leaves_one_table_as_applied(kernel, case):
    handle = kernel.handle(case)
    handle.apply(case.first)
    once = kernel.listing(*_ours(case))
    handle.apply(case.first)
    assert kernel.listing(*_ours(case)) == once
    assert kernel.tables().count(_ours(case)) == 1
    assert case.plan(case.first, handle.read()) == []


def test_applying_another_table_replaces_it_whole(kernel, case):
    handle = kernel.handle(case)
    handle.apply(case.first)
    handle.apply(case.second)
    assert case.plan(case.second, handle.read()) == []


def test_refused_table_raises_and_changes_nothing(kernel, case):
    handle = kernel.handle(case)
    handle.apply(case.first)
    before = kernel.listing(*_ours(case))
    with pytest.raises(NftError) as refused:
        handle.apply(case.refused)
    assert refused.value.nft_args == ("-c", "-f", "-")  # refused by the check, before any apply
    assert refused.value.stderr and refused.value.stderr in str(refused.value)
    assert "nft -c -f -" in str(refused.value)
    assert kernel.listing(*_ours(case)) == before
    assert case.plan(case.first, handle.read()) == []


def test_refused_first_table_leaves_none(kernel, case):
    handle = kernel.handle(case)
    with pytest.raises(NftError):
        handle.apply(case.refused)
    assert handle.read() is None and _ours(case) not in kernel.tables()


def test_delete_removes_only_our_table(kernel, case):
    other = _other(case)
    kernel.add_foreign()
    kernel.handle(other).apply(other.first)
    foreign, neighbour = kernel.listing(*FOREIGN), kernel.listing(*_ours(other))
    handle = kernel.handle(case)
    handle.apply(case.first)
    assert handle.delete() is True
    assert handle.read() is None and _ours(case) not in kernel.tables()
    assert kernel.listing(*FOREIGN) == foreign and kernel.listing(*_ours(other)) == neighbour
    assert other.plan(other.first, kernel.handle(other).read()) == []


def test_delete_of_an_absent_table_returns_false(kernel, case):
    kernel.add_foreign()
    foreign = kernel.listing(*FOREIGN)
    assert kernel.handle(case).delete() is False
    assert kernel.listing(*FOREIGN) == foreign and kernel.tables() == [FOREIGN]


# ---------------------------------------------------------------- the real handle alone


def _no_command(argv, stdin=None):
    raise AssertionError(f"ran {argv}")


def test_without_nft_there_is_no_table_of_ours(case, monkeypatch):
    monkeypatch.setattr(hpc_nft.shutil, "which", lambda name: None)
    handle = NftTable(case.codec, run=_no_command)
    assert handle.read() is None
    assert handle.delete() is False


def test_a_failed_listing_is_an_error_not_an_absent_table(case):
    if not shutil.which("nft"):
        pytest.skip("read() without nft installed answers None before running anything")
    handle = NftTable(case.codec, run=lambda argv, stdin=None: (1, "", "Error: Operation not permitted"))
    with pytest.raises(NftError, match="Operation not permitted"):
        handle.read()


def test_salt_cmd_run_all_drives_the_handle(case):
    calls = []

    def cmd_run_all(cmd, stdin=None, python_shell=True, ignore_retcode=False):
        calls.append((cmd, stdin, python_shell, ignore_retcode))
        return {"retcode": 0, "stdout": "", "stderr": ""}

    NftTable(case.codec, run=hpc_nft.from_cmd_run_all(cmd_run_all), netns="ns1").apply(case.first)
    text = case.codec.render(case.first)
    assert calls == [(["ip", "netns", "exec", "ns1", "nft", "-c", "-f", "-"], text, False, True),
                     (["ip", "netns", "exec", "ns1", "nft", "-f", "-"], text, False, True)]
