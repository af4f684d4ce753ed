"""`lab salt` and `lab exec` hand everything after their own options to salt / the command as given."""

from __future__ import annotations

import pytest

from hpclab.cli import _split_passthrough


@pytest.mark.parametrize(("argv", "own", "rest"), [
    (["salt", "-L", "labcn1,lablvs1", "test.ping"], ["salt"], ["-L", "labcn1,lablvs1", "test.ping"]),
    (["salt", "--prefix", "t1", "--tool", "salt-run", "jobs.list_jobs"],
     ["salt", "--prefix", "t1", "--tool", "salt-run"], ["jobs.list_jobs"]),
    (["salt", "--", "-C", "not lablvs*", "state.apply"], ["salt"], ["-C", "not lablvs*", "state.apply"]),
    (["exec", "--prefix", "t1", "labcn1", "ip", "-br", "a"], ["exec", "--prefix", "t1", "labcn1"], ["ip", "-br", "a"]),
    (["exec", "labcn1", "--", "ip", "-4", "rule"], ["exec", "labcn1"], ["ip", "-4", "rule"]),
    (["flap", "labcn1", "ib0"], ["flap", "labcn1", "ib0"], []),
])
def test_split_passthrough(argv, own, rest):
    assert _split_passthrough(argv) == (own, rest)
