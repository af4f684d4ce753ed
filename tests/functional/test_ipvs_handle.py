"""One suite for both IPVS handles: the dict fake here, and generic netlink in a director VM.

The host kernel has no IPVS, so the netlink handle runs where the lab's directors are:
tests/integration/lab/test_ipvs.py runs this file inside a director VM, in a throwaway network
namespace (``unshare -n``), with HPC_IPVS_REAL=1.
"""

from __future__ import annotations

import errno
import os

import pytest

from hpc_change import Change
from hpc_ipvs import RealServer, Service, SyncDaemon, Table, parse_rules, plan
from hpc_ipvs_kernel import FakeIpvs, NetlinkIpvs, apply

REAL = os.environ.get("HPC_IPVS_REAL") == "1"
SYNC_LINKS = ("ipvs-s0", "ipvs-s1")


@pytest.fixture(params=["fake", "netlink"])
def handle(request):
    if request.param == "fake":
        fake = FakeIpvs()
        fake.links |= set(SYNC_LINKS)
        yield fake
        return
    if not REAL:
        pytest.skip("needs IPVS in a throwaway netns: run in a director VM by tests/integration/lab/test_ipvs.py")
    import subprocess

    for link in SYNC_LINKS:  # the netns is thrown away: a veth pair stands for the directors' network
        if subprocess.run(["ip", "link", "show", link], capture_output=True).returncode != 0:
            subprocess.run(["ip", "link", "add", link, "type", "veth", "peer", link + "p"], check=True)
            subprocess.run(["ip", "link", "set", link, "up"], check=True)
    real = NetlinkIpvs()
    try:
        yield real
    finally:
        have = real.read()  # the netns is thrown away, but the suite shares it
        real.submit([Change("delete", "service", s.key(), old=s) for s in have.services]
                    + [Change("delete", "sync daemon", d.key(), old=d) for d in have.daemons])
        real.close()


SSH = Service("tcp", "10.12.0.10", 22, scheduler="wlc", persistence=600)
FE1 = RealServer(SSH.key(), "10.12.0.21", 22, "dr", 1)
FE2 = RealServer(SSH.key(), "10.12.0.22", 22, "nat", 3)
POOL = parse_rules("""
-A -t 10.12.0.10:22 -s wlc -p 86400 -M 255.255.255.0
-a -t 10.12.0.10:22 -r 10.12.0.21:22 -g -w 1
-a -t 10.12.0.10:22 -r 10.12.0.22:22 -g -w 2
-A -u 10.12.0.10:53 -s rr -o
-a -u 10.12.0.10:53 -r 10.7.7.1:5353 -m -w 1
-A -f 22 -s sh -b sh-fallback,sh-port
-a -f 22 -r 10.12.0.23:0 -i -w 0
-A -t 10.12.0.11:80 -s rr
""")


def _converge(handle, want, owned=()):
    steps = plan(want, handle.read(), owned)
    assert apply(handle, steps) == []
    return steps


def test_a_table_round_trips(handle):
    _converge(handle, POOL)
    assert handle.read() == POOL
    assert plan(POOL, handle.read()) == []


def test_settings_are_edited_in_place(handle):
    _converge(handle, parse_rules("-A -t 10.12.0.10:22 -s wlc\n-a -t 10.12.0.10:22 -r 10.12.0.21:22 -g -w 1"))
    edited = parse_rules("-A -t 10.12.0.10:22 -s rr -p 300\n-a -t 10.12.0.10:22 -r 10.12.0.21:22 -m -w 7")
    steps = _converge(handle, edited)
    assert [s.op for s in steps] == ["update", "update"]
    assert handle.read() == edited


def test_persistence_off_again(handle):
    _converge(handle, parse_rules("-A -t 10.12.0.10:22 -s wlc -p 600 -M 255.255.0.0"))
    _converge(handle, parse_rules("-A -t 10.12.0.10:22 -s wlc"))
    assert handle.read().services == (Service("tcp", "10.12.0.10", 22),)


def test_a_deleted_service_takes_its_real_servers(handle):
    _converge(handle, POOL)
    _converge(handle, POOL.only(k for k in ("udp 10.12.0.10:53",)), owned=[s.key() for s in POOL.services])
    assert handle.read() == POOL.only(["udp 10.12.0.10:53"])


def test_connection_counters_are_read(handle):
    _converge(handle, POOL)
    conns = handle.read().conns
    assert set(conns) == {r.key() for r in POOL.reals}
    assert all(c.active == 0 and c.inactive == 0 for c in conns.values())


def _errno(handle, step):
    (result,) = handle.submit([step])
    assert isinstance(result, OSError), result
    return result.errno


def test_refusals_carry_the_kernels_errno(handle):
    assert _errno(handle, Change("update", "service", SSH.key(), old=SSH, new=SSH)) == errno.ESRCH
    assert _errno(handle, Change("delete", "service", SSH.key(), old=SSH)) == errno.ESRCH
    assert _errno(handle, Change("add", "real server", FE1.key(), new=FE1)) == errno.ESRCH
    assert handle.submit([Change("add", "service", SSH.key(), new=SSH)]) == [None]
    assert _errno(handle, Change("add", "service", SSH.key(), new=SSH)) == errno.EEXIST
    assert _errno(handle, Change("update", "real server", FE1.key(), new=FE1)) == errno.ENOENT
    assert _errno(handle, Change("delete", "real server", FE1.key(), old=FE1)) == errno.ENOENT
    assert handle.submit([Change("add", "real server", FE1.key(), new=FE1)]) == [None]
    assert _errno(handle, Change("add", "real server", FE1.key(), new=FE1)) == errno.EEXIST
    unknown = Service("tcp", "10.12.0.10", 23, scheduler="nosuch")
    assert _errno(handle, Change("add", "service", unknown.key(), new=unknown)) == errno.ENOENT


def test_a_refused_step_does_not_stop_the_others(handle):
    results = handle.submit([Change("add", "real server", FE2.key(), new=FE2),  # no service yet
                             Change("add", "service", SSH.key(), new=SSH),
                             Change("add", "real server", FE1.key(), new=FE1)])
    assert [getattr(r, "errno", None) for r in results] == [errno.ESRCH, None, None]
    assert handle.read().reals == (FE1,)
    assert "add real server" in str(results[0])


def test_a_big_table_goes_in_batches(handle):
    big = parse_rules("\n".join(
        f"-A -t 10.20.{i // 250}.{i % 250 + 1}:22 -s wlc\n"
        + "\n".join(f"-a -t 10.20.{i // 250}.{i % 250 + 1}:22 -r 10.30.0.{j + 1}:22 -g -w 1" for j in range(3))
        for i in range(60)))
    _converge(handle, big)
    got = handle.read()
    assert len(got.services) == 60 and len(got.reals) == 180
    assert plan(big, got) == []


def _ipvsadm(*args, stdin=None):
    import shutil
    import subprocess

    if shutil.which("ipvsadm") is None:
        pytest.skip("ipvsadm is not installed")
    return subprocess.run(["ipvsadm", *args], input=stdin, capture_output=True, text=True, check=True).stdout


def test_ipvsadm_reads_what_we_write_and_we_read_what_it_writes(handle):
    """Our messages and ipvsadm's mean the same to the kernel: persistence (which needs the
    persistent flag, not only a timeout), its netmask, scheduler flags, forwarding methods."""
    if isinstance(handle, FakeIpvs):
        pytest.skip("ipvsadm talks to the kernel")
    _converge(handle, POOL)
    assert parse_rules(_ipvsadm("-S", "-n")) == POOL
    _ipvsadm("-C")
    _ipvsadm("-R", stdin=POOL.text() + "\n")
    assert handle.read() == POOL


def test_sync_daemons_start_move_and_stop(handle):
    """Master and backup on one interface; another interface is a stop and a start; gone after."""
    both = Table(daemons=(SyncDaemon("master", "ipvs-s0", 51), SyncDaemon("backup", "ipvs-s0", 51)))
    _converge(handle, both)
    assert _running(handle, both)
    moved = Table(daemons=(SyncDaemon("master", "ipvs-s1", 51), SyncDaemon("backup", "ipvs-s1", 51)))
    steps = _converge(handle, moved)
    assert [s.op for s in steps] == ["delete", "delete", "add", "add"]
    assert _running(handle, moved)
    _converge(handle, Table())
    assert handle.read().daemons == ()


def _running(handle, table: Table) -> bool:
    have = {d.key(): d for d in handle.read().daemons}
    return set(have) == {d.key() for d in table.daemons} and all(have[d.key()].satisfies(d) for d in table.daemons)


def test_a_master_sync_daemons_message_size_is_kept_and_a_new_one_restarts_it(handle):
    """lvs.sync.maxlen 44: one entry per message. Without one, the kernel picks a size from the
    MTU and reports it: that is no difference to plan."""
    small = Table(daemons=(SyncDaemon("master", "ipvs-s0", 51, 44), SyncDaemon("backup", "ipvs-s0", 51)))
    _converge(handle, small)
    have = {d.key(): d for d in handle.read().daemons}
    assert have["master sync daemon"].maxlen == 44
    print("kernel-chosen backup maxlen:", have["backup sync daemon"].maxlen)
    assert have["backup sync daemon"].maxlen == FakeIpvs.DEFAULT_SYNC_MAXLEN["backup"]
    assert plan(small, handle.read()) == []
    bigger = Table(daemons=(SyncDaemon("master", "ipvs-s0", 51, 80), SyncDaemon("backup", "ipvs-s0", 51)))
    steps = _converge(handle, bigger)
    assert [(s.op, s.key) for s in steps] == [("delete", "master sync daemon"), ("add", "master sync daemon")]
    assert {d.key(): d for d in handle.read().daemons}["master sync daemon"].maxlen == 80


def test_sync_daemon_refusals(handle):
    master = SyncDaemon("master", "ipvs-s0", 1)
    assert _errno(handle, Change("add", "sync daemon", "x", new=SyncDaemon("master", "nosuch0", 1))) == errno.ENODEV
    assert _errno(handle, Change("delete", "sync daemon", "x", old=master)) == errno.ESRCH
    assert handle.submit([Change("add", "sync daemon", "x", new=master)]) == [None]
    assert _errno(handle, Change("add", "sync daemon", "x", new=master)) == errno.EEXIST


def test_a_service_proc_leaves_out_is_still_read(handle, tmp_path):
    """/proc/net/ip_vs can miss a whole service (kernel 6.1, 1 of 1,000 measured): the real
    servers of a service it does not list are dumped by netlink instead."""
    if isinstance(handle, FakeIpvs):
        pytest.skip("about the kernel's /proc/net/ip_vs")
    _converge(handle, POOL)
    empty = tmp_path / "ip_vs"
    empty.write_text("IP Virtual Server version 1.2.1 (size=4096)\n")
    handle.proc = str(empty)
    assert handle.read() == POOL
