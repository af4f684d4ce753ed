"""natrouter against the real kernel, in throwaway network namespaces.

- the recorded `nft -j` fixtures of the unit tests still match what nft prints;
- the execution and state modules, loaded by Salt's loader inside a netns as minion labnat1, apply
  our table, do nothing the second time, repair drift, and leave a foreign table untouched through
  apply and clean;
- three namespaces (inside host, router, outside host): a TCP connection from inside reaches the
  outside host from the router's outside address, a new connection from outside is dropped;
- conntrackd starts with the rendered config and answers; with two routers on a sync link, a flow
  through one router appears in the other's kernel conntrack table (DisableExternalCache).

Everything made here carries the per-run prefix PREFIX ('n' + 4 hex) and is removed by name and
PID at the end, even after a failure. Addresses are 10.252.x.x, inside our namespaces only.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from testlib import ROOT

import hpc_natrouter as nr
from hpc_inventory import Host, HostInterface
from hpc_schema import NatRouter, Network

PREFIX = "n" + secrets.token_hex(2)
DATA = ROOT / "tests" / "unit" / "data" / "natrouter"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"),
                                reason="needs root, nft and ip (network namespaces)")


def run(cmd: list[str], ns: str | None = None, check: bool = True, timeout: float = 30,
        stdin: str | None = None) -> subprocess.CompletedProcess:
    full = (["ip", "netns", "exec", ns] if ns else []) + cmd
    res = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=stdin)
    if check and res.returncode != 0:
        raise AssertionError(f"{full} failed ({res.returncode}): {res.stderr}{res.stdout}")
    return res


class Lab:
    """Namespaces, processes and a scratch dir of this test, all named with PREFIX; ``close`` removes them."""

    def __init__(self) -> None:
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))

    def ns(self, name: str) -> str:
        full = f"{PREFIX}{name}"
        run(["ip", "netns", "add", full])
        self.namespaces.append(full)
        run(["ip", "link", "set", "lo", "up"], ns=full)
        return full

    def veth(self, ns_a: str, name_a: str, addr_a: str, ns_b: str, name_b: str, addr_b: str) -> None:
        """A veth pair made directly inside the two namespaces (never in the host's)."""
        run(["ip", "-n", ns_a, "link", "add", name_a, "type", "veth", "peer", "name", name_b, "netns", ns_b])
        for ns, name, addr in ((ns_a, name_a, addr_a), (ns_b, name_b, addr_b)):
            run(["ip", "-n", ns, "addr", "add", addr, "dev", name])
            run(["ip", "-n", ns, "link", "set", name, "up"])

    def spawn(self, ns: str, cmd: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        # Daemons that forked (conntrackd -d) live on in our namespaces: end them by their PID.
        for ns in self.namespaces:
            pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for ns in self.namespaces:
            run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def lab():
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


def _strip(doc: dict) -> list:
    """nft -j output without what differs run to run: handles, metainfo."""
    out = []
    for item in doc["nftables"]:
        if "metainfo" in item:
            continue
        (kind, body), = item.items()
        out.append({kind: {k: v for k, v in body.items() if k != "handle"}})
    return out


def _list_table(ns: str) -> dict | None:
    res = run(["nft", "-j", "list", "table", nr.FAMILY, nr.TABLE], ns=ns, check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def test_recorded_fixtures_still_hold(lab):
    ns = lab.ns("rec")
    for source in sorted(DATA.glob("*.nft")):
        run(["nft", "-f", str(source)], ns=ns)
        recorded = json.loads(source.with_suffix(".json").read_text())
        assert _strip(_list_table(ns)) == _strip(recorded), source.name


# ---------------------------------------------------------------- the modules, through Salt's loader

LOADER = r"""
import json, subprocess, sys
root, cache, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = [root + "/_utils", root + "/tests"]
import salt.config, salt.loader
from testlib import example_pillar
opts = salt.config.minion_config(None)
opts.update(id="labnat1", file_client="local", cachedir=cache, pillar=example_pillar(),
            module_dirs=[root + "/_modules"], states_dirs=[root + "/_states"], utils_dirs=[root + "/_utils"])
utils = salt.loader.utils(opts)
funcs = salt.loader.minion_mods(opts, utils=utils)
states = {t: salt.loader.states(dict(opts, test=t), funcs, utils, {}) for t in (False, True)}
out = []
for kind, name, kwargs in steps:
    if kind == "sh":
        out.append(subprocess.run(name, shell=True, capture_output=True, text=True).returncode)
    elif kind == "mod":
        out.append(funcs[name](**kwargs))
    else:
        test = kwargs.pop("test", False)
        out.append(states[test][name](**kwargs))
print(json.dumps(out))
"""


def salt_steps(lab: Lab, ns: str, steps: list) -> list:
    res = run([sys.executable, "-c", LOADER, str(ROOT), str(lab.tmp / "cache"), json.dumps(steps)],
              ns=ns, timeout=120)
    return json.loads(res.stdout.strip().splitlines()[-1])


FOREIGN = f"""table inet {PREFIX}_foreign {{
    chain forward {{
        type filter hook forward priority 10; policy accept;
        ip saddr 10.252.9.9 counter accept
    }}
}}
"""


def test_modules_apply_once_repair_drift_and_spare_a_foreign_table(lab):
    ns = lab.ns("mod")
    run(["nft", "-f", "-"], ns=ns, stdin=FOREIGN)
    foreign = run(["nft", "list", "table", "inet", f"{PREFIX}_foreign"], ns=ns).stdout
    state = {"name": "inet hpcnet_nat"}
    out = salt_steps(lab, ns, [
        ["mod", "natrouter.is_router", {}],
        ["state", "natrouter.nft_applied", {**state, "test": True}],
        ["mod", "natrouter.plan", {}],                       # test=True changed nothing
        ["state", "natrouter.nft_applied", state],
        ["state", "natrouter.nft_applied", state],           # second run: a no-op
        ["mod", "natrouter.apply_nft", {}],
        ["sh", "nft add rule inet hpcnet_nat forward counter accept", {}],
        ["mod", "natrouter.plan", {}],
        ["mod", "natrouter.apply_nft", {}],
        ["mod", "natrouter.plan", {}],
        ["mod", "natrouter.status", {}],
    ])
    is_router, dry, after_dry, first, second, again, _, drift, repair, clean_plan, status = out
    assert is_router is True
    assert dry["result"] is None and dry["changes"]["plan"] == ["add table inet hpcnet_nat"]
    assert after_dry[0]["op"] == "add"
    assert first["result"] is True and first["changes"]["applied"] == ["add table inet hpcnet_nat"]
    assert second == {**second, "result": True, "changes": {}}
    assert again == {"changes": [], "applied": False}
    assert [(c["op"], c["kind"], c["key"]) for c in drift] == [("update", "chain", "inet hpcnet_nat forward")]
    assert repair["applied"] is True and clean_plan == []
    assert status["router"] and status["table_present"] and status["changes"] == []
    assert nr.parse_table(_list_table(ns)) is not None
    assert run(["nft", "list", "table", "inet", f"{PREFIX}_foreign"], ns=ns).stdout == foreign

    out = salt_steps(lab, ns, [
        ["state", "natrouter.nft_absent", {**state, "test": True}],
        ["state", "natrouter.nft_absent", state],
        ["state", "natrouter.nft_absent", state],
    ])
    assert out[0]["result"] is None and out[1]["result"] is True and out[1]["changes"]
    assert out[2]["result"] is True and out[2]["changes"] == {}
    assert _list_table(ns) is None
    assert run(["nft", "list", "table", "inet", f"{PREFIX}_foreign"], ns=ns).stdout == foreign


# ---------------------------------------------------------------- traffic through a router


def _router_model(names: dict[str, str], peer: str | None = None) -> tuple[Host, list[Host], NatRouter, dict]:
    """labnat1 as the functional lab wires it: inside 10.252.1.0/24, outside 10.252.2.0/24, sync 10.252.3.0/24."""
    networks = {"in": Network(cidr="10.252.1.0/24"), "out": Network(cidr="10.252.2.0/24"),
                "sync": Network(cidr="10.252.3.0/24")}
    me = Host("labnat1", "nat", 0, {
        "in": HostInterface("in", names["in"], "10.252.1.1", None),
        "out": HostInterface("out", names["out"], "10.252.2.1", None),
        "sync": HostInterface("sync", names["sync"], "10.252.3.1", None)})
    other = Host("labnat2", "nat", 0, {"sync": HostInterface("sync", peer or "none", "10.252.3.2", None)})
    nat = NatRouter.model_validate({"hosts": "labnat[1-2]", "inside": "in", "outside": "out",
                                    "vrrp_instance": "nat_gw", "sync_network": "sync"})
    return me, [me, other], nat, networks


SERVER = r"""
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(); print("listening", flush=True)
c, a = s.accept(); print(a[0], flush=True); c.sendall(b"ok"); time.sleep(float(sys.argv[3]))
"""
CLIENT = r"""
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2); print(c.recv(2).decode())
except OSError as exc:
    print(type(exc).__name__)
"""


def serve(lab: Lab, ns: str, addr: str, port: int, hold: float = 0) -> subprocess.Popen:
    proc = lab.spawn(ns, [sys.executable, "-c", SERVER, addr, str(port), str(hold)])
    assert proc.stdout.readline().strip() == "listening"
    return proc


def connect(ns: str, addr: str, port: int) -> str:
    return run([sys.executable, "-c", CLIENT, addr, str(port)], ns=ns).stdout.strip()


@pytest.fixture
def routed(lab):
    """inside host -- router -- outside host; the outside host routes back to the inside network
    through the router, so only the router's table can stop a connection from outside."""
    inside, router, outside = lab.ns("in"), lab.ns("rt"), lab.ns("out")
    names = {"in": f"{PREFIX}ri", "out": f"{PREFIX}ro", "sync": f"{PREFIX}rs"}
    lab.veth(inside, f"{PREFIX}i", "10.252.1.2/24", router, names["in"], "10.252.1.1/24")
    lab.veth(router, names["out"], "10.252.2.1/24", outside, f"{PREFIX}o", "10.252.2.2/24")
    run(["ip", "route", "add", "default", "via", "10.252.1.1"], ns=inside)
    run(["ip", "route", "add", "10.252.1.0/24", "via", "10.252.2.1"], ns=outside)
    run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], ns=router)
    return inside, router, outside, names


def apply(ns: str, text: str) -> None:
    run(["nft", "-c", "-f", "-"], ns=ns, stdin=text)
    run(["nft", "-f", "-"], ns=ns, stdin=text)


def test_inside_out_is_masqueraded_and_outside_in_is_dropped(lab, routed):
    inside, router, outside, names = routed
    # Without our table the router forwards both ways, unchanged: the controls of the two checks.
    server = serve(lab, outside, "10.252.2.2", 8080)
    assert connect(inside, "10.252.2.2", 8080) == "ok"
    assert server.stdout.readline().strip() == "10.252.1.2"
    serve(lab, inside, "10.252.1.2", 8081)
    assert connect(outside, "10.252.1.2", 8081) == "ok"

    me, _, nat, networks = _router_model(names)
    text = nr.render_table(nr.desired(me, nat, networks))
    apply(router, text)
    apply(router, text)  # replacing is idempotent: same table, no duplicated rules
    assert nr.plan(nr.desired(me, nat, networks), nr.parse_table(_list_table(router))) == []

    server = serve(lab, outside, "10.252.2.2", 8082)
    assert connect(inside, "10.252.2.2", 8082) == "ok"
    assert server.stdout.readline().strip() == "10.252.2.1"  # the router's outside address
    serve(lab, inside, "10.252.1.2", 8083)
    assert connect(outside, "10.252.1.2", 8083) == "TimeoutError"


# ---------------------------------------------------------------- conntrackd


def _conntrackd(lab: Lab, ns: str, host: Host, peers: list[Host], nat: NatRouter, tag: str) -> Path:
    paths = nr.ConntrackdPaths(str(lab.tmp / f"{tag}.lock"), str(lab.tmp / f"{tag}.sock"))
    conf = lab.tmp / f"{tag}.conf"
    conf.write_text(nr.render_conntrackd(host, peers, nat, paths))
    run(["conntrackd", "-C", str(conf), "-d"], ns=ns)
    for _ in range(50):  # -d returns before the control socket is up
        if run(["conntrackd", "-C", str(conf), "-s"], ns=ns, check=False).returncode == 0:
            return conf
        time.sleep(0.1)
    raise AssertionError(f"conntrackd in {ns} does not answer on {paths.socket}")


@pytest.mark.skipif(not shutil.which("conntrackd") or not shutil.which("conntrack"), reason="needs conntrackd")
def test_conntrackd_starts_answers_and_syncs_flows_to_the_peer(lab, routed):
    inside, router, outside, names = routed
    peer = lab.ns("rt2")
    lab.veth(router, names["sync"], "10.252.3.1/24", peer, f"{PREFIX}ps", "10.252.3.2/24")
    me, routers, nat, networks = _router_model(names, f"{PREFIX}ps")
    apply(router, nr.render_table(nr.desired(me, nat, networks)))
    conf = _conntrackd(lab, router, me, routers, nat, "rt")
    stats = run(["conntrackd", "-C", str(conf), "-s"], ns=router).stdout
    assert "cache internal" in stats

    # The peer: its own view of the same pair (sync addresses swapped), as labnat2 would render it.
    other = Host("labnat2", "nat", 0, {"in": HostInterface("in", "none", "10.252.1.11", None),
                                       "sync": HostInterface("sync", f"{PREFIX}ps", "10.252.3.2", None)})
    _conntrackd(lab, peer, other, [routers[0], other], nat, "rt2")

    server = serve(lab, outside, "10.252.2.2", 8090, hold=10)
    assert connect(inside, "10.252.2.2", 8090) == "ok"
    assert server.stdout.readline().strip() == "10.252.2.1"
    for _ in range(50):
        table = run(["conntrack", "-L", "-p", "tcp", "--dport", "8090"], ns=peer, check=False).stdout
        if "src=10.252.1.2" in table:
            break
        time.sleep(0.1)
    assert "src=10.252.1.2 dst=10.252.2.2" in table and "dst=10.252.2.1" in table  # NAT kept
