"""Wake-on-LAN (hpc_wol): the magic packet's bytes, the targets' checks, and a real broadcast out
of one end of a veth pair received on the other, in a throwaway network namespace (root only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from testlib import example_pillar

import hpc_pillar
import hpc_wol

UTILS = Path(__file__).resolve().parents[2] / "_utils"

# Runs in its own network namespace: wol0 (the boot server's admin NIC) and wol1 (a node's), one
# veth pair; the listener is bound to wol1, so only a frame that crossed the pair reaches it (the
# kernel's local copy of a broadcast arrives on wol0).
WIRE = r"""
import socket, subprocess, sys
sys.path.insert(0, sys.argv[1])
import hpc_wol
def ip(*a): subprocess.run(["ip", *a], check=True)
ip("link", "set", "lo", "up")
ip("link", "add", "wol0", "type", "veth", "peer", "name", "wol1")
ip("addr", "add", "10.99.0.1/24", "dev", "wol0"); ip("addr", "add", "10.99.0.2/24", "dev", "wol1")
ip("link", "set", "wol0", "up"); ip("link", "set", "wol1", "up")
# Both ends are this namespace's: wol1 must take a frame whose source is a local address.
for key, value in (("all/rp_filter", "0"), ("wol1/rp_filter", "0"), ("wol1/accept_local", "1")):
    open(f"/proc/sys/net/ipv4/conf/{key}", "w").write(value)
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
rx.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"wol1")
rx.bind(("", hpc_wol.PORT)); rx.settimeout(5)
sent = hpc_wol.send([hpc_wol.Target("labcn1", "52:54:00:0b:00:41")], "wol0", "10.99.0.255")
data, (src, port) = rx.recvfrom(2048)
print(sent, src, data.hex())
"""


def test_the_magic_packet_is_six_ff_then_the_mac_sixteen_times():
    packet = hpc_wol.magic_packet("52:54:00:0B:00:41")
    assert len(packet) == 102 and packet[:6] == b"\xff" * 6
    assert packet[6:] == bytes.fromhex("5254000b0041") * 16


def test_unknown_nodes_or_nodes_without_a_mac_are_named_and_nothing_is_sent():
    pillar = example_pillar()
    inventory = hpc_pillar.inventory(pillar)
    found = hpc_wol.targets(["labcn1", "labcn2"], inventory, "admin")
    assert [(t.host, t.mac) for t in found] == [("labcn1", "52:54:00:0b:00:41"), ("labcn2", "52:54:00:0b:00:42")]
    with pytest.raises(ValueError, match=r"^not declared in the inventory: labcn9$"):
        hpc_wol.targets(["labcn1", "labcn9"], inventory, "admin")
    with pytest.raises(ValueError, match=r"^no MAC on the ib network \(nodes\[\]\.interfaces\.ib\.mac\): labcn1$"):
        hpc_wol.targets(["labcn1"], inventory, "ib")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a network namespace)")
def test_a_magic_packet_crosses_the_wire_as_a_broadcast_to_port_9():
    out = subprocess.run(["unshare", "-n", sys.executable, "-c", WIRE, str(UTILS)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    sent, src, payload = out.stdout.split()
    assert (sent, src) == ("1", "10.99.0.1")
    assert bytes.fromhex(payload) == hpc_wol.magic_packet("52:54:00:0b:00:41")
