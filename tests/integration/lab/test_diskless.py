"""The boot server's HTTP side, for real: labboot1 applies ``diskless.boot`` (lighttpd, the iPXE
boot script, each diskless node's menu, iPXE for TFTP) and a compute node fetches them over HTTP
the way its iPXE would. Images cannot be built in the lab (no Debian mirror inside it), so the
store is given two versions by hand: what the menus offer is the boot server's word."""

from __future__ import annotations

import json
import shlex
import time

import pytest
from labtests import changed, failed, salt_run

pytestmark = pytest.mark.lab

SERVER, NODE = "labboot1", "labcn1"
URL = "http://10.11.0.5/hpcnet"
STORE = "/srv/hpcnet"
OLD, NEW = "compute-0123456789ab", "compute-abcdef012345"
IMAGE = {"name": "compute", "suite": "bookworm", "packages": ["openssh-server", "nfs-common"]}


def _apply(lab, *extra: str) -> dict:
    data = lab.salt_json([SERVER, "state.apply", "diskless.boot", *extra, "-t", "300"], timeout=400)
    assert isinstance(data.get(SERVER), dict), data
    return data


def _states(data: dict) -> dict[str, dict]:
    return {s["__id__"]: s for s in data[SERVER].values()}


def _fetch(lab, path: str) -> str:
    rc, out, err = lab.exec(NODE, ["busybox", "wget", "-q", "-O", "-", f"{URL}/{path}"])
    assert rc == 0, f"GET {URL}/{path} from {NODE}: {err}"
    return out


def _seed(lab, versions: list[str]) -> None:
    """Versions in the store as a build leaves them (files, manifest, versions.json)."""
    script = ["set -e"]
    for v in versions:
        d = f"{STORE}/images/compute/{v}"
        script += [f"mkdir -p {d}", f"for f in vmlinuz initrd.img root.squashfs; do echo {v} > {d}/$f; done",
                   f"(cd {d} && sha256sum vmlinuz initrd.img root.squashfs > manifest)"]
    script.append(f"echo '{json.dumps(versions)}' > {STORE}/images/compute/versions.json")
    rc, _, err = lab.exec(SERVER, ["sh", "-c", "\n".join(script)])
    assert rc == 0, err


@pytest.fixture(scope="module")
def synced(lab):
    """The checkout's modules on the boot server: ``state.apply <sls>`` does not sync them (only a
    highstate does). Once for the file (15 s a time in the lab)."""
    assert lab.salt_json([SERVER, "saltutil.sync_all", "-t", "120"], timeout=200)[SERVER]
    return lab


@pytest.fixture
def boot_server(synced):
    lab = synced
    try:
        yield lab
    finally:
        lab.exec(SERVER, ["rm", "-rf", f"{STORE}/images", f"{STORE}/menus"])


def test_menus_are_served_for_the_versions_the_boot_server_holds_and_follow_a_pin(boot_server):
    lab = boot_server
    lab.exec(SERVER, ["rm", "-rf", f"{STORE}/images", f"{STORE}/menus"])
    # Nothing built (a new boot server: a highstate never builds): no state fails, the menus
    # state warns naming the nodes that cannot boot, and none of them has a menu.
    data = _apply(lab)
    assert failed(data) == {}
    warnings = _states(data)["diskless-boot-diskless-menus_applied"].get("warnings", [])
    assert any("no image built yet for labcn1, labcn2" in w and "diskless.build compute" in w
               for w in warnings), warnings
    assert lab.exec(SERVER, ["sh", "-c", f"ls {STORE}/menus 2>/dev/null"])[1].strip() == ""
    assert "chain --autofree menus/${hostname}.ipxe" in _fetch(lab, "boot.ipxe")

    _seed(lab, [OLD, NEW])
    data = _apply(lab)
    assert failed(data) == {}
    assert sorted(_states(data)["diskless-boot-diskless-menus_applied"]["changes"]["applied"]) == [
        "add menu labcn1.ipxe", "add menu labcn2.ipxe"]
    assert "warnings" not in _states(data)["diskless-boot-diskless-menus_applied"]
    menu = _fetch(lab, "menus/labcn2.ipxe")
    assert f"kernel {URL}/images/compute/{NEW}/vmlinuz" in menu and "hpcnet.overlay=2G" in menu
    assert f"item previous compute {OLD} (previous)" in menu
    manifest = _fetch(lab, f"images/compute/{NEW}/manifest")
    assert manifest.endswith("  root.squashfs\n") and manifest.count("\n") == 3
    assert changed(_apply(lab)) == {}  # a second apply changes nothing

    # A pin to the older build: test=True says exactly which menus change, the apply does it.
    pin = json.dumps({"diskless": {"images": [{**IMAGE, "version": OLD}]}})
    predicted = _states(_apply(lab, "test=True", f"pillar={pin}"))["diskless-boot-diskless-menus_applied"]
    assert predicted["result"] is None
    assert sorted(predicted["changes"]["plan"]) == ["update menu labcn1.ipxe", "update menu labcn2.ipxe"]
    applied = _states(_apply(lab, f"pillar={pin}"))["diskless-boot-diskless-menus_applied"]
    assert sorted(applied["changes"]["applied"]) == sorted(predicted["changes"]["plan"])
    menu = _fetch(lab, "menus/labcn1.ipxe")
    assert f"kernel {URL}/images/compute/{OLD}/vmlinuz" in menu and "item previous" not in menu


def test_ipxe_is_on_tftp_for_firmware_without_it(boot_server):
    lab = boot_server
    _apply(lab)
    rc, out, err = lab.exec(SERVER, ["sh", "-c", "cmp /usr/lib/ipxe/undionly.kpxe /srv/tftp/undionly.kpxe && "
                                                 "cmp /usr/lib/ipxe/ipxe.efi /srv/tftp/ipxe.efi && echo same"])
    assert (rc, out.strip()) == (0, "same"), err


# Runs in a node on the admin network: every UDP datagram to port 9 for SECONDS, one line each:
# the sender's address and the payload in hex.
LISTENER = r"""
import socket, sys, time
end = time.time() + float(sys.argv[1])
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.bind(("0.0.0.0", 9))
    while time.time() < end:
        sock.settimeout(max(0.1, end - time.time()))
        try:
            data, (sender, _) = sock.recvfrom(1024)
        except socket.timeout:
            break
        print(sender, data.hex(), flush=True)
"""


def _listen(lab, host: str, out: str, seconds: float) -> None:
    script = f"python3 -c {shlex.quote(LISTENER)} {seconds} > {out} 2>&1 &"
    assert lab.exec(host, ["sh", "-c", script])[0] == 0
    time.sleep(1)  # bound before anything is sent


def _heard(lab, host: str, out: str) -> list[tuple[str, str]]:
    rc, text, err = lab.exec(host, ["sh", "-c", f"cat {out}; rm -f {out}"])
    assert rc == 0, err
    return [tuple(line.split()) for line in text.splitlines() if line.strip()]


def test_wake_sends_each_node_its_magic_packet_from_the_boot_server_on_the_admin_network(boot_server):
    """``salt-run diskless.wake``: the boot server broadcasts one magic packet per node on the
    admin network (6 x ff, the node's MAC 16 times), heard by a listener on another node of that
    network; a nodeset naming a node that is not declared sends nothing at all."""
    lab = boot_server
    listener, out = "labcn2", f"/tmp/{lab.prefix}-wol.out"
    macs = {h: lab.topo.nodes[h].iface("admin").mac for h in ("labcn1", "labcn2")}
    server_ip = lab.topo.nodes[SERVER].iface("admin").ip

    _listen(lab, listener, out, 8)
    rc, refused, text = salt_run(lab, "diskless.wake", "labcn[2,9]")
    assert refused.get("result") is False and "labcn9" in refused.get("comment", ""), text
    time.sleep(8)
    assert _heard(lab, listener, out) == [], "a refused wake sent packets"

    _listen(lab, listener, out, 15)
    rc, woke, text = salt_run(lab, "diskless.wake", "labcn[1-2]")
    assert woke.get("result") is True and woke["sent"] == 2, text
    time.sleep(15)
    heard = _heard(lab, listener, out)
    expected = {("ff" * 6 + mac.replace(":", "").lower() * 16) for mac in macs.values()}
    assert sorted(heard) == sorted((server_ip, payload) for payload in expected), heard
