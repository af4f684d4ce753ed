"""A helper changed on the master reaches a running minion with one sync: its execution modules
(jobs) and its beacons (the minion's main process, where a plain import would stay stale), with
no restart. The changed copies go in the lab master's first file root (``<run>/salt/overrides``),
never in the checkout; they are removed and synced away at the end.
"""

from __future__ import annotations

import secrets

import pytest
from labtests import lab_cli

from hpclab import events, paths
from hpclab import salt as labsalt
from hpclab.cluster import REPO

pytestmark = pytest.mark.lab

NODE = "labcn1"


def _put(lab, name: str, text: str | None) -> None:
    """Write (or remove, with None) ``_utils/<name>`` in the overrides root, inside the master's
    host: files added to the lower layer of a running overlay are not reliably seen there."""
    path = labsalt.overrides_dir(lab.run) / "_utils" / name
    if text is None:
        argv = ["rm", "-f", str(path)]
    else:
        argv = ["sh", "-c", f"mkdir -p '{path.parent}' && cat > '{path}'"]
    rc, _, err = lab.exec(lab.topo.master.name, argv, stdin=text)
    assert rc == 0, err


def _sync(lab) -> dict:
    return lab.salt_json([NODE, "saltutil.sync_all", "-t", "60"], timeout=120)[NODE]


@pytest.fixture
def changed_helpers(lab, converged):
    token = secrets.token_hex(4)
    node = (REPO / "_utils" / "hpc_node.py").read_text()
    link = (REPO / "_utils" / "hpc_link_events.py").read_text()
    header = 'HEADER = "# Managed by Salt (hpcnet {what})'
    node2 = node.replace(header, header.replace("{what}", f"{{what}}, {token}"))
    link2 = link.replace('"local": local}', f'"local": local, "probe": "{token}"}}')
    assert node2 != node and link2 != link
    _put(lab, "hpc_node.py", node2)
    _put(lab, "hpc_link_events.py", link2)
    try:
        yield token
    finally:
        _put(lab, "hpc_node.py", None)
        _put(lab, "hpc_link_events.py", None)
        _sync(lab)


def test_a_synced_helper_is_used_by_modules_and_beacons_without_a_restart(lab, changed_helpers):
    token = changed_helpers
    # The minion's first process (its lowest PID; the jobs it forks come and go) must live on.
    minion = min(lab.daemon_pids(NODE, "salt-minion"))
    assert token not in lab.salt_json([NODE, "node.hosts_file"])[NODE]
    synced = _sync(lab)
    assert "utils.hpc_link_events" in synced["utils"] and "utils.hpc_node" in synced["utils"], synced
    assert token in lab.salt_json([NODE, "node.hosts_file"])[NODE]  # a job: the new helper
    with events.watch(lab, "hpc/net/link/ib0/") as bus:
        # The beacon's listener is replaced when the minion reloads its beacons (on the refresh
        # event the sync sends, asynchronously): flap until an event comes from the new code.
        def probed(event):
            return event["data"].get("id") == NODE and event["data"]["data"].get("probe") == token

        for _ in range(20):
            assert lab_cli(lab, "flap", NODE, "ib0").returncode == 0
            if bus.wait_for(probed, 1.5):
                break
        assert bus.seen(probed), bus.seen()
    assert min(lab.daemon_pids(NODE, "salt-minion")) == minion  # no restart
    assert paths.wait_until(lambda: "default via" in lab.exec(NODE, ["ip", "route", "show", "table", "201"])[1], 20)
