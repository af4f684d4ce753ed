"""The lab's director VM builder (lab/hpclab/vm.py): the VM boots Debian's kernel with IPVS
(ipvsadm works in it: what makes it a director), reaches a lab peer, keeps its /etc to itself and
leaves nothing behind. This tests the lab, not the project's IPVS code (the ipvs module's own
tests run through Salt in the lab's directors).

Needs root and qemu-system-x86_64; the first run downloads Debian's kernel
package (~70 MB) into /var/cache/hpclab. Takes ~30 s under TCG.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    from hpclab import vm as labvm
    from hpclab.registry import Run
except ImportError:  # run from a checkout without the lab on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "lab"))
    from hpclab import vm as labvm
    from hpclab.registry import Run

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="lab VMs need root (taps, bridges, netns)"),
    pytest.mark.skipif(shutil.which(labvm.QEMU) is None, reason=f"{labvm.QEMU} is not installed"),
]

VM_ADDR = "10.250.203.1"
PEER_ADDR = "10.250.203.2"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def leftovers(run: Run, records: list) -> list[str]:
    """Everything carrying the run's prefix, or recorded by it, that still exists on the host."""
    tag = f"{run.prefix}-"
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found = [w.split("@")[0].rstrip(":") for w in links.split() if w.startswith(tag)]
    found += [w for w in netns.split() if w.startswith(tag)]
    found += [f"pid {r.pid}" for r in records if r.pid and labvm._pid_matches(r.pid, r.extra.get("starttime"))]
    return found + ([str(run.dir)] if run.dir.exists() else [])


@pytest.fixture
def lab():
    """A bridge with one netns peer on it (veth); all of it torn down even on failure."""
    run = Run("v" + secrets.token_hex(2))
    br, ns, host_end, peer_end = run.name("br"), run.name("ns"), run.name("vh"), run.name("vp")
    try:
        run.record("bridge", br)
        ip("link", "add", br, "type", "bridge")
        labvm._quiet_ipv6(br)
        ip("link", "set", br, "up")
        run.record("netns", ns)
        ip("netns", "add", ns)
        run.record("link", host_end)
        ip("link", "add", host_end, "type", "veth", "peer", "name", peer_end, "netns", ns)
        ip("link", "set", host_end, "master", br, "up")
        ip("-n", ns, "addr", "add", f"{PEER_ADDR}/24", "dev", peer_end)
        ip("-n", ns, "link", "set", peer_end, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        yield run, br
    finally:
        labvm.teardown(run)


def test_director_vm(lab):
    run, br = lab
    nic = labvm.Nic(run.name("t0"), labvm.random_mac(), br, "eth0", (f"{VM_ADDR}/24",))
    hostname = f"{run.prefix}-director"
    vm = labvm.start_vm(run, "d1", [nic], hostname=hostname)
    labvm.wait_ready(vm, timeout=180)

    assert labvm.vm_exec(vm, ["ipvsadm", "-A", "-t", "10.99.203.43:22", "-s", "wlc", "-p", "86400"])[0] == 0
    rc, out, err = labvm.vm_exec(vm, ["ipvsadm", "-S", "-n"])
    assert rc == 0, err
    assert "-A -t 10.99.203.43:22 -s wlc -p 86400" in out.splitlines()

    rc, out, err = labvm.vm_exec(vm, ["ping", "-c", "2", "-W", "5", PEER_ADDR], timeout=30)
    assert rc == 0, out + err

    assert labvm.vm_exec(vm, ["hostname"])[1].strip() == hostname
    assert labvm.vm_exec(vm, ["test", "-e", "/run/systemd/system"])[0] == 1, "guest must look systemd-less"

    probe = f"/etc/hpclab-{run.prefix}-probe"
    assert labvm.vm_exec(vm, ["sh", "-c", f"echo guest > {probe} && cat {probe}"])[1] == "guest\n"
    assert not Path(probe).exists(), "a guest /etc write reached the host"

    # A daemon started through the agent outlives the request that started it.
    pid = labvm.vm_spawn(vm, ["sleep", "600"])
    assert labvm.vm_exec(vm, ["kill", "-0", str(pid)])[0] == 0

    labvm.stop_vm(vm)
    assert not Path(f"/proc/{vm.pid}").exists()
    records = run.records()
    assert {r.kind for r in records} == {"bridge", "netns", "link", "dir", "tap", "process"}
    assert labvm.teardown(run) == []
    assert leftovers(run, records) == []
