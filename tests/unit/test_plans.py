"""Every planner, tested as data: tests/unit/plans/<subsystem>/*.yaml, each ``{desired, actual, changes}``.

``plan_args`` (optional) are passed to the planner as keywords. A case's ``changes`` lists
the expected steps (``hpc_change.Change.as_data()``); a step that
gives only some keys (``op``, ``kind``, ``key``) is compared on those keys.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from testlib import example_pillar, mutate

import hpc_change
import hpc_frontend
import hpc_ipvs
import hpc_marking
import hpc_natrouter
import hpc_pillar
import hpc_routing
from hpc_routing import Route, RoutingState, Rule

PLANS = Path(__file__).parent / "plans"
DATA = Path(__file__).parent / "data"


def routing_state(data: dict | None) -> RoutingState:
    data = data or {}
    return RoutingState(
        tables={int(k): v for k, v in (data.get("tables") or {}).items()},
        rules=frozenset(Rule(**r) for r in data.get("rules") or []),
        routes=frozenset(Route(**r) for r in data.get("routes") or []),
    )


def nat_desired(edits: dict) -> hpc_natrouter.Table:
    """labnat1's table from the example pillar (seed 003's masquerade) with ``edits`` applied."""
    pillar = example_pillar()
    pillar["natrouter"].pop("snat_address", None)
    for path, value in edits.items():
        pillar = mutate(pillar, path, value)
    sections = hpc_pillar.load(pillar)
    host = hpc_pillar.inventory(pillar)["labnat1"]
    return hpc_natrouter.desired(host, sections["natrouter"], sections["networks"])


def nat_actual(recording: str | None) -> hpc_natrouter.Table | None:
    return hpc_natrouter.parse_table((DATA / "natrouter" / recording).read_text()) if recording else None


def marking_desired(data: dict | None) -> hpc_marking.Marking | None:
    if data is None:
        return None
    return hpc_marking.desired([hpc_marking.MarkSet(s["name"], s["fwmark"], frozenset(s["uids"]))
                                for s in data["sets"]])


def marking_actual(recording: str | None) -> hpc_marking.Marking | None:
    return hpc_marking.parse((DATA / recording).read_text()) if recording else None


def lo_actual(recording: str) -> list[str]:
    return hpc_frontend.parse_lo((DATA / "frontend" / recording).read_text())


# subsystem -> (desired from data, actual from data, planner)
PLANNERS = {
    "policy_routing": (routing_state, routing_state, hpc_routing.plan),
    "natrouter": (nat_desired, nat_actual, hpc_natrouter.plan),
    "marking": (marking_desired, marking_actual, hpc_marking.plan),
    "ipvs": (hpc_ipvs.parse_rules, hpc_ipvs.parse_rules, hpc_ipvs.plan),  # tables in ipvsadm -S -n lines
    "frontend": (lambda vips: vips or [], lo_actual, hpc_frontend.plan),  # VIPs on lo (direct routing)
}
CASES = sorted(PLANS.glob("*/*.yaml"))


def test_every_planner_has_cases():
    assert {c.parent.name for c in CASES} == set(PLANNERS)


def _projected(step: dict, expected: dict) -> dict:
    return {k: step.get(k) for k in expected}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.stem}" for c in CASES])
def test_plan(case):
    data = yaml.safe_load(case.read_text())
    desired, actual, plan = PLANNERS[case.parent.name]
    steps = hpc_change.as_data(plan(desired(data["desired"]), actual(data["actual"]), **data.get("plan_args", {})))
    assert [_projected(s, e) for s, e in zip(steps, data["changes"], strict=False)] == data["changes"]
    assert len(steps) == len(data["changes"]), steps


def test_the_real_servers_are_read_from_proc_net_ip_vs():
    """Recorded in a lab director (tests/functional/test_ipvs_handle.py's POOL restored by ipvsadm,
    plus an IPv6 service, which is not modelled and is skipped)."""
    import hpc_ipvs_kernel

    reals, conns, seen = hpc_ipvs_kernel.parse_proc((DATA / "ipvs" / "proc_net_ip_vs.txt").read_text())
    assert seen == {"tcp 10.12.0.10:22", "udp 10.12.0.10:53", "tcp 10.12.0.11:80", "fwmark 22"}
    assert sorted(r.text() for r in reals) == sorted([
        "-a -t 10.12.0.10:22 -r 10.12.0.22:22 -g -w 2", "-a -t 10.12.0.10:22 -r 10.12.0.21:22 -g -w 1",
        "-a -u 10.12.0.10:53 -r 10.7.7.1:5353 -m -w 1", "-a -f 22 -r 10.12.0.23:0 -i -w 0"])
    assert set(conns) == {r.key() for r in reals}


def test_an_empty_table_in_proc_net_ip_vs_has_no_real_servers():
    import hpc_ipvs_kernel

    headers = ("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n"
               "  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n")
    reals, conns, seen = hpc_ipvs_kernel.parse_proc(headers)
    assert (reals, dict(conns), seen) == ([], {}, set())
    reals, conns, seen = hpc_ipvs_kernel.parse_proc(headers + "TCP  0A0C000A:0016 wlc persistent 600 FFFFFFFF\n")
    assert (reals, dict(conns), seen) == ([], {}, {"tcp 10.12.0.10:22"})


def test_an_ipv6_real_server_of_an_ipv4_service_is_left_out():
    """An IPv4 service can tunnel to an IPv6 real server (kernel >= 3.18); not modelled."""
    import hpc_ipvs_kernel

    text = ("TCP  0A0C000B:0050 rr\n"
            "  -> [2001:0db8:0000:0000:0000:0000:0000:0002]:0050      Tunnel  1      0          0\n"
            "  -> 0A0C0017:0050      Tunnel  3      1          2\n")
    reals, conns, seen = hpc_ipvs_kernel.parse_proc(text)
    assert [r.text() for r in reals] == ["-a -t 10.12.0.11:80 -r 10.12.0.23:80 -i -w 3"]
    assert dict(conns) == {"tcp 10.12.0.11:80 -> 10.12.0.23:80": hpc_ipvs.Conns(1, 2)}


def test_the_kernel_modules_a_table_needs():
    table = hpc_ipvs.parse_rules("-A -t 10.12.0.10:22 -s wlc\n-A -u 10.12.0.10:53 -s rr\n-A -t 10.12.0.11:22 -s wlc")
    assert hpc_ipvs.kernel_modules(table) == ["ip_vs", "ip_vs_wlc", "ip_vs_rr"]


def test_a_real_server_the_kernel_made_local_is_written_as_ipvsadm_does():
    """The kernel forwards to a director's own address as "Local"; the table's text (ipvs.table)
    must not fail on one, whoever made it."""
    assert hpc_ipvs.RealServer("tcp 10.12.0.10:22", "10.12.0.11", 22, "local", 1).text() == \
        "-a -t 10.12.0.10:22 -r 10.12.0.11:22 -g -w 1"
