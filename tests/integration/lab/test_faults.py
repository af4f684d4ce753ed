"""Daemons we own come back by themselves (issue 10, point 2). The lab's hosts have no init system
that restarts anything: what brings keepalived back here is the hpc_daemons beacon, the master's
reactor and keepalived.revive, really run.
"""

from __future__ import annotations

import pytest

from hpclab import events, paths

pytestmark = pytest.mark.lab

ROUTERS = ("labnat1", "labnat2")
NODE, USER = "labcn1", "aliprod"


def test_a_killed_keepalived_comes_back_with_one_vip_holder_and_flows_carry_on(lab, converged):
    """SIGKILL of keepalived on the master NAT router: its VIPs stay on the interface while
    labnat2 takes over (two holders). The master, told by the beacon, removes the stale VIPs and
    starts keepalived there; labnat1 preempts again. A chosen user's flow sees no loss."""
    assert paths.wait_until(lambda: paths.vip_holders(lab) == ["labnat1"], 30), paths.vip_holders(lab)
    paths.start_server(lab, "labinet1", (paths.CHOSEN_PORT,))
    result = paths.stream_as(lab, NODE, USER, paths.INTERNET, paths.CHOSEN_PORT, seconds=12, interval=0.01)
    with events.watch(lab, "hpc/daemon/") as bus:
        assert paths.wait_until(lambda: paths.stream_result(lab, NODE, result) is None, 5)  # running
        killed = lab.kill("labnat1", "keepalived")
        dead = bus.wait_for(lambda e: e["tag"] == "hpc/daemon/keepalived/dead" and e["data"]["id"] == "labnat1", 10)
        assert dead, bus.seen()
        back = paths.wait_until(lambda: paths.vip_holders(lab) == ["labnat1"]
                                and all(lab.daemon_pids(r, "keepalived") for r in ROUTERS), 15, step=0.05)
        alive = bus.wait_for(lambda e: e["tag"] == "hpc/daemon/keepalived/alive", 10)
    running = [r for r in ROUTERS if lab.daemon_pids(r, "keepalived")]
    assert back, f"VIP on {paths.vip_holders(lab)}, keepalived on {running}"
    assert alive and not set(killed) & set(lab.daemon_pids("labnat1", "keepalived"))
    assert paths.wait_until(lambda: paths.stream_result(lab, NODE, result) is not None, 30)
    got = paths.stream_result(lab, NODE, result)
    assert got["error"] is None and got["echoed"] == got["sent"], got
