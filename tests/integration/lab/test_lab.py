"""The example cluster built by the lab: Salt through the master, the firewall, faults.

Runs under tools/private-etc like the rest of the integration tier; the lab hosts' overlays then see
the private /etc as their lower layer.
"""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
from labtests import changed, failed, highstate, lab_cli

from hpclab import cluster

pytestmark = pytest.mark.lab

MINIONS = 13  # every inventory host but the master's (labadm1)


def test_every_minion_answers_through_the_master(lab):
    assert len(lab.topo.minions) == MINIONS
    pings = lab.salt_json(["*", "test.ping", "-t", "60"], timeout=120)
    assert pings == {m: True for m in lab.topo.minions}
    # Lab addresses live only inside the lab: none on this machine's own interfaces.
    addrs = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert not [ln for ln in addrs.splitlines() if any(f" {n}." in ln for n in ("10.11", "10.12", "10.13"))]


def test_status_lists_every_host(lab):
    proc = lab_cli(lab, "status")
    assert proc.returncode == 0, proc.stderr
    lines = {ln.split()[0]: ln for ln in proc.stdout.splitlines()[2:]}
    assert sorted(lines) == sorted(lab.topo.nodes)
    assert "salt-minion" in lines["labcn1"] and " vm " in lines["lablvs1"]


def test_compute_node_reaches_firewall_but_not_the_internet(lab):
    proc = lab_cli(lab, "exec", "labcn1", "ping", "-c1", "-W2", "10.13.0.254")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    before = cluster.fw_drops(lab)
    proc = lab_cli(lab, "exec", "labcn1", "ping", "-c1", "-W2", "10.12.0.250")
    assert proc.returncode != 0, proc.stdout
    assert cluster.fw_drops(lab) >= before + 1  # labfw1 dropped it: ib -> wan is forbidden
    # labinet1 itself is up: the wan side reaches it.
    assert lab_cli(lab, "exec", "labclient1", "ping", "-c1", "-W2", "10.12.0.250").returncode == 0


# A host's AAAA lookup of its own name (what Salt's ip_fqdn grain asks at each grains load): /etc/hosts
# has no IPv6 address for it, so the question goes to the pillar's nameservers.
AAAA_OF_OWN_NAME = """
import socket, time
started = time.monotonic()
try:
    socket.getaddrinfo(socket.getfqdn(), None, socket.AF_INET6)
    print("answered", time.monotonic() - started)
except socket.gaierror as exc:
    print(exc.errno, time.monotonic() - started)
"""


@pytest.mark.parametrize("host", ["labcn1", "lablvs1"])
def test_the_pillars_nameservers_answer_as_a_sites_do(lab, converged, host):
    """The resolver the states wrote (node.resolver) reaches DNS servers that answer (hpclab.dns):
    "no IPv6 address for that name" at once, as a site's DNS does, not a 10 s timeout in every
    grains load of the lab."""
    rc, out, err = lab.exec(host, ["sh", "-c", "grep -c '^nameserver 10.11.0.10[123]$' /etc/resolv.conf"])
    assert out.strip() == "3", (out, err)
    rc, out, err = lab.exec(host, ["python3", "-c", AAAA_OF_OWN_NAME], timeout=60)
    code, took = out.split()
    assert int(code) == socket.EAI_NODATA and float(took) < 2.0, (host, out, err)


def test_highstate_through_the_master_then_nothing_to_change(lab, converged):
    assert failed(converged) == {}
    second = highstate(lab)
    assert failed(second) == {}
    assert changed(second) == {}


def test_daemons_were_started_by_the_states(lab, converged):
    """sshd on the frontends, keepalived on directors and NAT routers, conntrackd on the NAT
    routers, dnsmasq on the boot server: none of them is started by the lab itself."""
    expected = {"labfe1": "sshd", "labfe2": "sshd", "labfe3": "sshd", "lablvs1": "keepalived",
                "lablvs2": "keepalived", "labnat1": "keepalived", "labnat2": "keepalived",
                "labboot1": "dnsmasq"}
    missing = {host: daemon for host, daemon in expected.items() if not lab.daemon_pids(host, daemon)}
    assert not missing, missing
    assert lab.daemon_pids("labnat1", "conntrackd") and lab.daemon_pids("labnat2", "conntrackd")


def test_daemons_we_own_restart_on_failure_under_systemd(lab, converged):
    """Debian's keepalived, conntrackd and dnsmasq units have no Restart=: the states add a drop-in
    (inert in the lab, which has no systemd; what a systemd host reads)."""
    owned = {"lablvs1": ["keepalived"], "labnat1": ["keepalived", "conntrackd"], "labboot1": ["dnsmasq"],
             "labcn1": []}
    for host, units in owned.items():
        rc, out, _ = lab.exec(host, ["sh", "-c", "cat /etc/systemd/system/*.service.d/hpcnet-restart.conf "
                                                 "2>/dev/null | grep -c '^Restart=on-failure$'"])
        assert out.strip() == str(len(units)), (host, out)


def test_a_highstate_starts_a_dead_daemon_again_and_says_so(lab, converged):
    """Salt's service states are as truthful in a lab host as on a Debian host without systemd:
    no "Running in OFFLINE mode" success while the daemon is dead."""
    assert lab.daemon_pids("labfe1", "sshd")
    lab.kill("labfe1", "sshd")
    # The directors' health probes connect 4 times a second: an sshd child serving one can outlive
    # the kill for a moment (seen in CI); it ends with its connection. If anything fails below,
    # sshd is started again: the next tests need labfe1 in the pool.
    try:
        deadline = time.monotonic() + 5
        while lab.daemon_pids("labfe1", "sshd") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lab.daemon_pids("labfe1", "sshd") == []
        data = lab.salt_json(["labfe1", "state.apply", "-t", "300"], timeout=400)["labfe1"]
    finally:
        if not lab.daemon_pids("labfe1", "sshd"):
            lab.exec("labfe1", ["service", "ssh", "start"])
    assert isinstance(data, dict), data
    service = next(s for s in data.values() if s["__id__"] == "frontend-service-service-running")
    assert service["result"] is True and service["changes"] == {"ssh": True}, service
    assert lab.daemon_pids("labfe1", "sshd")


def test_no_minion_mirrors_the_hosts_netlink(lab, converged):
    """Salt's network_settings beacon starts a pyroute2 NDB (a thread parsing every netlink
    notification into SQLite) each time beacon modules are all imported, as every `beacons.add`
    does: after the highstate and one more listing, labcn1's only routing socket with multicast
    groups is the hpc_link listener's (links and IPv4 addresses)."""
    assert lab.salt_json(["labcn1", "beacons.list_available"])["labcn1"]
    _, table, _ = lab.exec("labcn1", ["cat", "/proc/net/netlink"])
    groups = [int(line.split()[3], 16) for line in table.splitlines()[1:] if line.split()[1] == "0"]
    assert [g for g in groups if g & ~HPC_LINK_GROUPS] == [], table
    assert HPC_LINK_GROUPS in groups, table


HPC_LINK_GROUPS = 0x11  # RTMGRP_LINK | RTMGRP_IPV4_IFADDR


def test_nat_gateway_vip_is_held_by_one_router(lab, converged):
    holders = [h for h in ("labnat1", "labnat2")
               if "10.13.0.30/16" in lab.exec(h, ["ip", "-4", "addr", "show", "ib0"])[1]]
    assert holders == ["labnat1"]  # priority 150 against 100


def test_faults_partition_heal_flap_kill(lab):
    ping_fw = ("exec", "labcn1", "ping", "-c1", "-W1", "10.13.0.254")
    assert lab_cli(lab, "partition", "labcn1").returncode == 0
    try:
        assert lab_cli(lab, *ping_fw).returncode != 0
    finally:
        assert lab_cli(lab, "heal", "labcn1").returncode == 0
    assert lab_cli(lab, *ping_fw).returncode == 0

    # An administrative flap of labclient1's admin NIC: its connected route comes back.
    assert lab_cli(lab, "flap", "labclient1", "eth0").returncode == 0
    assert lab_cli(lab, "exec", "labclient1", "ping", "-c1", "-W2", "10.11.0.1").returncode == 0

    assert lab.daemon_pids("labclient1", "salt-minion")
    proc = lab_cli(lab, "kill", "labclient1", "salt-minion")
    assert proc.returncode == 0, proc.stderr
    assert lab.daemon_pids("labclient1", "salt-minion") == []
