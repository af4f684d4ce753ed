"""Lab hosts and lab networks: isolation, connectivity, and a clean teardown."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpclab import net
from hpclab.cluster import leftovers_of  # the same check `lab down` makes
from hpclab.host import (
    Host,
    host_exec,
    host_spawn,
    leftovers,
    load_host,
    start_host,
    stop_host,
    teardown,
)
from hpclab.registry import Run

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="lab hosts need root (namespaces, mounts, links)"),
]


def new_run() -> Run:
    return Run("h" + secrets.token_hex(2))


def sh(host: Host, script: str) -> subprocess.CompletedProcess:
    proc = host_exec(host, ["/bin/sh", "-c", script], timeout=30)
    assert proc.returncode == 0, f"{host.name}: {script!r} -> {proc.stderr}"
    return proc


def add_addr(host: Host, ifname: str, cidr: str) -> None:
    sh(host, f"ip addr add {cidr} dev {ifname} && ip link set {ifname} up")


def ping(host: Host, addr: str, wait: int = 2) -> bool:
    return host_exec(host, ["ping", "-c1", f"-W{wait}", addr]).returncode == 0


def build(run: Run, names: tuple[str, ...], net_id: int) -> dict[str, Host]:
    """Hosts on an eth bridge (10.251.N.x) and an ib bridge (10.251.N+100.x)."""
    hosts = {n: start_host(run, n) for n in names}
    eth, ib = net.make_bridge(run, "eth"), net.make_bridge(run, "ib")
    for i, host in enumerate(hosts.values(), start=1):
        net.make_veth_into(run, host, eth, "eth0", mac=f"02:51:{net_id:02x}:00:00:{i:02x}")
        net.make_veth_into(run, host, ib, "ib0")
        add_addr(host, "eth0", f"10.251.{net_id}.{i}/24")
        add_addr(host, "ib0", f"10.251.{net_id + 100}.{i}/24")
    return hosts


@pytest.fixture
def run() -> Iterator[Run]:
    run = new_run()
    try:
        yield run
    finally:
        teardown(run)


def test_lab_hosts_are_isolated_and_connected(run: Run, tmp_path: Path) -> None:
    hosts = build(run, ("a", "b"), net_id=1)
    a, b = hosts["a"], hosts["b"]

    assert ping(a, "10.251.1.2") and ping(b, "10.251.1.1")
    assert sh(a, "cat /sys/class/net/eth0/address").stdout.strip() == "02:51:01:00:00:01"

    # ib0 on the second bridge, and an administrative flap from inside.
    assert ping(a, "10.251.101.2")
    sh(a, "ip link set ib0 down")
    assert "state DOWN" in sh(a, "ip link show ib0").stdout
    assert not ping(a, "10.251.101.2", wait=1)
    sh(a, "ip link set ib0 up")
    assert ping(a, "10.251.101.2")

    for host in hosts.values():
        assert sh(host, "hostname").stdout.strip() == host.name
        assert sh(host, "cat /etc/hostname").stdout.strip() == host.name
        assert host.name in sh(host, "cat /etc/hosts").stdout
        assert host_exec(host, ["test", "-e", "/run/systemd/system"]).returncode != 0
        sh(host, "/usr/sbin/sshd -t")

    # A write to /etc in one host is seen nowhere else.
    marker = f"/etc/hpclab-{run.prefix}-marker"
    sh(a, f"echo {run.prefix} > {marker}")
    assert sh(a, f"cat {marker}").stdout.strip() == run.prefix
    assert not Path(marker).exists()
    assert host_exec(b, ["test", "-e", marker]).returncode != 0

    # PID 1 reaps orphans: a double-forked child that exits leaves no zombie.
    sh(a, "(sleep 0.1 &) ; sleep 0.5")
    assert not [st for st in sh(a, "ps -eo stat=").stdout.split() if st.startswith("Z")]

    # A spawned daemon outlives the exec that started it; stop_host ends it.
    log = tmp_path / "daemon.log"
    pid = host_spawn(a, ["sleep", "3600"], log)
    time.sleep(0.2)
    assert Path(f"/proc/{pid}").exists()
    assert "sleep 3600" in sh(a, "ps -eo args").stdout
    stop_host(a)
    assert not Path(f"/proc/{pid}").exists()
    assert not Path(f"/run/netns/{a.netns}").exists()
    assert ping(b, "10.251.1.2")  # b itself is untouched

    teardown(run)
    assert leftovers_of(run.prefix) == []
    assert not run.dir.exists()


def test_two_runs_side_by_side(tmp_path: Path) -> None:
    first, second = new_run(), new_run()
    while second.prefix == first.prefix:
        second = new_run()
    try:
        build(first, ("a", "b"), net_id=2)
        hosts = build(second, ("a", "b"), net_id=3)
        pid = host_spawn(hosts["a"], ["sleep", "3600"], tmp_path / "daemon.log")

        teardown(first)
        assert leftovers_of(first.prefix) == []
        assert load_host(first, "a") is None
        assert load_host(second, "a") == hosts["a"]
        assert leftovers_of(second.prefix) != []
        assert Path(f"/proc/{pid}").exists()
        assert ping(hosts["a"], "10.251.3.2") and ping(hosts["b"], "10.251.103.1")
    finally:
        teardown(first)
        teardown(second)
    assert leftovers_of(second.prefix) == []
    assert not Path(f"/proc/{pid}").exists()


def test_dead_run_is_reported_then_cleaned(run: Run) -> None:
    host = start_host(run, "a")
    assert run.prefix not in leftovers()
    # As after a crash or reboot: the host's processes die, its records stay.
    os.kill(host.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while run.prefix not in leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.prefix in leftovers()
    teardown(run)
    assert run.prefix not in leftovers()
    assert leftovers_of(run.prefix) == []
