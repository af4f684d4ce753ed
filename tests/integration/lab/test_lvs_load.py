"""A frontend gets busy (issue 11, points 5 and 6): its hpc_frontend_load beacon reports its own
load per core (each lab host reads its own /proc/loadavg: lab/README.md), the master's reactor
(hpc_react.lvs_load: smoothing, dead-band, rate limit) has both directors lower its weight, in
place, with one ipvs.set_load job at a time; the other frontends keep theirs; once it is idle again its weight
comes back. That IPVS shares new logins by these weights is test_logins'; that ``lvs.load.enabled``
false gives the pillar's weights and keeps the factors aside is tests/functional/test_ipvs_module.py's
(two director applies here cost 200-250 s of the CI's tier, and once left a director's apply
unreturned within its timeout)."""

from __future__ import annotations

import time

import pytest

from hpclab import cluster, events

FRONTEND, ADDRESS = "labfe2", "10.12.0.22"
DIRECTORS = ("lablvs1", "lablvs2")
VIP = "10.12.0.10:22"
FULL = 100  # every frontend's weight in the example pillar
LOOPS = 6  # runnable tasks in labfe2: its 1-minute load climbs towards 6 (3 per core)


@pytest.fixture(scope="module")
def pool(lab, converged):
    return lab


def _weights(lab: cluster.Lab) -> dict[str, dict[str, int]]:
    """{director: {real server address: weight}} of the VIP's service."""
    out = {}
    for director in DIRECTORS:
        rc, text, err = lab.exec(director, ["ipvsadm", "-S", "-n"], timeout=60)
        assert rc == 0, err
        out[director] = {w.split(" -r ")[1].split(":")[0]: int(w.split("-w ")[1].split()[0])
                         for w in text.splitlines() if f"-t {VIP} -r " in w}
    return out


def _wait(lab: cluster.Lab, predicate, timeout: float) -> tuple[bool, dict]:
    deadline = time.monotonic() + timeout
    while True:
        weights = _weights(lab)
        if predicate(weights) or time.monotonic() > deadline:
            return predicate(weights), weights
        time.sleep(2)


def _everyone_full(weights: dict) -> bool:
    return all(w == FULL for table in weights.values() for w in table.values())


def test_a_busy_frontend_loses_weight_on_both_directors_and_gets_it_back(pool):
    lab = pool
    ok, weights = _wait(lab, _everyone_full, 90)  # idle frontends: their first reports say 1.0
    assert ok, weights
    loops = f"for i in $(seq {LOOPS}); do nice -n 19 sh -c 'while :; do :; done' >/dev/null 2>&1 & echo $!; done"
    with events.watch(lab, "salt/job/", seconds=600) as jobs:
        rc, out, err = lab.exec(FRONTEND, ["sh", "-c", loops])
        assert rc == 0 and len(out.split()) == LOOPS, err
        started = time.monotonic()
        try:
            ok, weights = _wait(lab, lambda w: all(t[ADDRESS] < FULL for t in w.values()), 120)
            dropped = time.monotonic() - started
            assert ok, f"{FRONTEND} still at full weight after 120 s: {weights}"
            assert all(w == FULL for t in weights.values() for a, w in t.items() if a != ADDRESS), weights
            published = jobs.seen(lambda e: e["tag"].endswith("/new") and e["data"].get("fun") == "ipvs.set_load")
            assert published and all(sorted(e["data"]["minions"]) == list(DIRECTORS) for e in published), published
            assert any(0 < e["data"]["arg"][0]["loads"].get(FRONTEND, 1) < 1 for e in published), published
        finally:
            lab.exec(FRONTEND, ["kill", *out.split()])
        stopped = time.monotonic()
        ok, weights = _wait(lab, _everyone_full, 240)
        assert ok, f"{FRONTEND} not back at full weight 240 s after it went idle: {weights}"
    print(f"weight down on both directors {dropped:.0f} s after {LOOPS} busy loops started "
          f"({weights}); back {time.monotonic() - stopped:.0f} s after they stopped; "
          f"{len(published)} set_load job(s) while it rose")
