"""Diskless nodes for real (issue 12, step 5): QEMU VMs with no disk PXE-boot from the lab's boot
server (SeaBIOS, iPXE from the NIC's ROM, dnsmasq, lighttpd: boot.ipxe, the node's menu, kernel and
initrd, the squashfs image checked and mounted under a RAM overlay), their minions are accepted by
the master's ``salt/auth`` reactor because their name and boot MAC are the inventory's, and each
applies its states at boot (hpcnet-config-apply). An unregistered machine gets no lease and no key;
a pillar pin of the previous version and a reboot boot that version; with discovery on, an unknown
machine is registered from its lease (``diskless.register``) and then gets its own menu.

The image: the phases that download (Debian's mirror, PyPI) are built on this machine by
``lab image`` into labboot1's store (the lab has no mirror; conftest starts it when the lab is up,
at the lowest priority); the rest (``configure``, which needs the lab master's address and key,
and the pack) by the real ``diskless.image`` state on labboot1.

Everything the VMs need is read from what they print on their console (hpclab.pxe) and from the
master: nothing runs in them but the image.

The file takes about 10 minutes under TCG beside the lab (docs/diskless.md, "Diskless VMs in the
lab"): it runs only with ``HPCLAB_DISKLESS_BOOT=1``, which ``make test`` (and so CI) sets;
``make test-diskless`` runs it alone on a lab of its own.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from labtests import changed, failed, salt_run

from hpclab import pxe
from hpclab import salt as labsalt

pytestmark = [pytest.mark.lab, pytest.mark.skipif(
    os.environ.get("HPCLAB_DISKLESS_BOOT") != "1",
    reason="diskless boots: about 10 min under TCG; HPCLAB_DISKLESS_BOOT=1 (make test-diskless) runs them")]

SERVER, IMAGE, NODES = pxe.SERVER, pxe.IMAGE, pxe.NODES
STRANGER = ("labx9", "52:54:00:aa:00:99")  # a machine the inventory does not know
SITE = "/etc/hpcnet/diskless/site/configure/50_motd"  # a site script: a configure-only change
BOOT_S = 1800  # power-on to the end of the first highstate, under TCG, two at once beside the lab
LEASES = "/var/lib/misc/dnsmasq.leases"


def _versions(lab) -> list[str]:
    data = lab.salt_json([SERVER, "diskless.versions", IMAGE])
    assert isinstance(data.get(SERVER), list), data
    return data[SERVER]


def _node_cmd(lab, node: str, command: str) -> str:
    data = lab.salt_json([node, "cmd.run", command, "-t", "120"], timeout=200)
    assert isinstance(data.get(node), str), data
    return data[node]


def _menu(lab, node: str) -> str:
    """The node's iPXE menu as a machine on the admin network gets it."""
    rc, out, err = lab.exec("labcn1", ["busybox", "wget", "-q", "-O", "-", f"http://10.11.0.5/hpcnet/menus/{node}.ipxe"])
    assert rc == 0, err
    return out


def _lease(lab, mac: str) -> str | None:
    """``mac``'s newest line in the boot server's leases (``expiry mac ip name client-id``), or None."""
    text = lab.exec(SERVER, ["sh", "-c", f"cat {LEASES} 2>/dev/null || true"])[1].lower()
    return max((line for line in text.splitlines() if f" {mac} " in line), key=lambda line: int(line.split()[0]),
               default=None)


def _new_lease(lab, mac: str, before: str | None, timeout: float, boot: pxe.Boot) -> list[str]:
    """``mac``'s lease once it differs from ``before`` (a lease from an earlier boot does not
    count: a new one has a new expiry): [expiry, mac, ip, name, ...]."""
    deadline = time.monotonic() + timeout
    while (line := _lease(lab, mac)) in (None, before):
        assert time.monotonic() < deadline, f"no new lease for {mac} in {timeout:.0f} s: {pxe.tail(boot.text())}"
        time.sleep(1)
    return line.split()


@pytest.fixture(scope="module")
def served(lab, image_prebuild):
    """The inventory with labcn[3-4], the image built (version V1) and served, their leases and
    menus in place. Undone at the end: VMs off, keys deleted, pillar back."""
    image_prebuild.wait_done()
    pxe.forget(lab, list(NODES))  # a reused lab may hold an earlier run's keys: each boot here is a first
    pxe.add_nodes(lab)
    boots: list[pxe.Boot] = []
    try:
        # What `lab image` built here is the boot server's cache: only what needs its master runs
        # (nothing, on a lab reused after a first run).
        assert set(pxe.serve(lab)) <= {"configure"}
        yield lab, boots
    finally:
        for boot in boots:
            boot.power_off()
        pxe.forget(lab, list(NODES))
        lab.exec(SERVER, ["rm", "-f", SITE])
        lab.set_pillar("cluster.sls", None)
        lab.set_pillar("diskless.sls", None)


def test_an_unregistered_machine_gets_no_lease_and_no_key(served):
    lab, boots = served
    before, lease = pxe.keys(lab), _lease(lab, STRANGER[1])  # a reused lab may hold the registration test's
    stranger = pxe.Boot(lab.run, *STRANGER)
    boots.append(stranger.power_on())
    stranger.wait("ipxe", 120)
    # iPXE's DHCP gives up (about 30 s of discovers): dnsmasq answered nobody with that MAC.
    deadline = time.monotonic() + 180
    while not stranger.saw("No configuration methods succeeded"):
        assert time.monotonic() < deadline, pxe.tail(stranger.text())
        time.sleep(1)
    stranger.power_off()
    assert _lease(lab, STRANGER[1]) == lease
    assert pxe.keys(lab) == before


def test_two_registered_vms_boot_at_once_are_accepted_and_apply_their_states(served):
    lab, boots = served
    pair = [pxe.Boot(lab.run, name, mac).power_on() for name, mac in NODES.items()]
    boots.extend(pair)
    pxe.wait_all(pair, "applied", BOOT_S)
    for boot in pair:
        print(f"{boot.name}: {boot.seen}")
    for boot in pair:
        pxe.answers(lab, boot.name)
    assert set(NODES) <= set(pxe.keys(lab)["minions"])
    rc, leases, _ = lab.exec(SERVER, ["cat", LEASES])
    assert all(mac in leases for mac in NODES.values()), leases
    # What the node applied at boot holds: a highstate from the master predicts no change.
    data = lab.salt_json(["labcn[34]", "state.apply", "test=True", "-t", "600"], timeout=700)
    assert sorted(data) == sorted(NODES), data
    assert failed(data) == {} and changed(data) == {}, json.dumps(data, indent=1)[-4000:]
    for node in NODES:
        assert f"/images/{IMAGE}/{_versions(lab)[-1]}/" in _node_cmd(lab, node, "cat /proc/cmdline")


def test_a_pin_of_the_previous_version_and_a_reboot_boot_that_version(served):
    """A configure-only change makes version V2 (the newest: what unpinned nodes boot); the pillar
    pins V1 back; labcn3 is reset and boots V1."""
    lab, boots = served
    first = _versions(lab)[-1]
    assert lab.exec(SERVER, ["sh", "-c", f"mkdir -p {SITE.rsplit('/', 1)[0]} && cat > {SITE} && chmod 755 {SITE}"],
                    stdin="#!/bin/sh\necho 'hpcnet test: version 2' > /etc/motd\n")[0] == 0
    rc, out, text = salt_run(lab, "diskless.build", IMAGE, timeout=1500)
    assert out.get("result") is True, text[-3000:]
    second = _versions(lab)[-1]
    assert second != first and _versions(lab)[-2:] == [first, second]
    pxe.apply(lab, "diskless.boot")
    assert f"/{second}/vmlinuz" in _menu(lab, "labcn3")

    diskless_sls = (labsalt.REPO / "pillar" / "diskless.sls").read_text()
    pinned = re.sub(r"(?m)^(      packages: \[openssh-server, nfs-common\])$", rf"\1\n      version: {first}",
                    diskless_sls)
    assert pinned != diskless_sls, "diskless.sls changed: update this test"
    lab.set_pillar("diskless.sls", pinned)
    pxe.apply(lab, "diskless.boot")
    assert f"/{first}/vmlinuz" in _menu(lab, "labcn3")
    for other in boots:  # the pair's labcn4 would take CPU from labcn3's boot
        if other.name != "labcn3":
            other.power_off()
    labcn3 = next((b for b in boots if b.name == "labcn3"), None)
    if labcn3 is None:  # this test alone: labcn3 was not booted before; the power-on is its "reset"
        labcn3 = pxe.Boot(lab.run, "labcn3", NODES["labcn3"])
        boots.append(labcn3)
    old_key = pxe.accepted_key(lab, "labcn3")  # None when this test runs alone
    labcn3.reboot()
    # The image the initrd fetched (and checked against that version's manifest) is the root
    # systemd runs from: once the node has its identity, the version it booted is settled. Its
    # highstate was shown by the pair's boot.
    labcn3.wait("identity", BOOT_S)
    fetched = re.findall(r"hpcnet: fetching (\S+)", labcn3.flat())
    assert fetched and all(f"/images/{IMAGE}/{first}/" in url for url in fetched), fetched
    # Its RAM root made a new key: the master denies it (the old one is accepted), the reactor
    # finds the old key's holder silent, deletes it, and accepts the new one at the next try.
    deadline = time.monotonic() + 300
    while pxe.accepted_key(lab, "labcn3") in (None, old_key):
        assert time.monotonic() < deadline, "labcn3's new key not accepted 300 s after its identity"
        time.sleep(1)
    print(f"labcn3 (reboot): {labcn3.seen}; new key accepted {time.monotonic() - labcn3.started:.0f} s after power-on")


def test_a_machine_registered_from_its_discovery_lease_gets_its_own_menu(served):
    """Seed 002's registration, for real: with ``diskless.discovery`` on, a machine the inventory
    does not know gets an address from the range and no boot file; ``salt-run diskless.register``
    names it from the boot server's leases and commits the inventory file to the pillar's git
    repository (here the run's pillar overrides, the checkout is never written); one apply on
    the boot server and the machine, reset, gets its own menu."""
    lab, boots = served
    master, overrides = lab.topo.master.name, str(labsalt.pillar_overrides_dir(lab.run))
    git = ["git", "-C", overrides, "-c", "user.name=lab", "-c", "user.email=lab@hpclab"]
    diskless_sls = (labsalt.REPO / "pillar" / "diskless.sls").read_text()
    discovery = diskless_sls.replace("  menu_timeout: 5\n", "  menu_timeout: 5\n  discovery: {start: 10.11.0.150, "
                                                           "end: 10.11.0.199, lease_time: 600}\n")
    assert discovery != diskless_sls, "diskless.sls changed: update this test"
    lab.set_pillar("diskless.sls", discovery)
    # The pillar's git repository: the overrides directory, holding the inventory (add_nodes).
    for step in (["init", "-q"], ["add", "cluster.sls"], ["commit", "-qm", "the lab inventory"]):
        assert lab.exec(master, [*git, *step])[0] == 0, step
    stranger = pxe.Boot(lab.run, *STRANGER)
    try:
        pxe.apply(lab, "diskless")
        before = _lease(lab, STRANGER[1])
        boots.append(stranger.power_on())  # powered off by the module's end, whatever happens here
        # An address from the discovery range, and no boot file with it (iPXE has nothing to chain).
        lease = _new_lease(lab, STRANGER[1], before, 180, stranger)
        assert re.fullmatch(r"10\.11\.0\.1[5-9]\d", lease[2]), lease
        stranger.power_off()  # its firmware would retry every minute: nothing more to see

        rc, shown, text = salt_run(lab, "diskless.register", "labcn[5-6]", "cn", "image=compute")
        assert shown.get("nodes") == {"labcn5": {"mac": STRANGER[1], "ip": "10.11.0.45"}}, text[-2000:]
        assert "labcn5" not in lab.exec(master, ["cat", f"{overrides}/cluster.sls"])[1]  # a proposal writes nothing
        rc, written, text = salt_run(lab, "diskless.register", "labcn[5-6]", "cn", "image=compute", "write=True")
        assert written.get("result") is True, text[-2000:]
        rc, subject, _ = lab.exec(master, [*git, "log", "-1", "--format=%s"])
        assert subject.strip() == (f"Register labcn5 ({STRANGER[1]}, 10.11.0.45) from the boot server's DHCP "
                                   "leases"), subject
        assert lab.exec(master, [*git, "status", "--porcelain", "cluster.sls"])[1].strip() == ""

        pxe.apply(lab, "diskless")
        assert "vmlinuz" in _menu(lab, "labcn5")
        before = _lease(lab, STRANGER[1])
        stranger.power_on()
        stranger.wait("menu", 180)
        assert re.search(r"menus/labcn5\.ipxe\.\.\. ok", stranger.flat()), pxe.tail(stranger.text())
        assert _new_lease(lab, STRANGER[1], before, 30, stranger)[2:4] == ["10.11.0.45", "labcn5"]
    finally:
        stranger.power_off()
        lab.exec(master, ["rm", "-rf", f"{overrides}/.git"])
        lab.set_pillar("diskless.sls", None)
        lab.set_pillar("cluster.sls", None)
        pxe.add_nodes(lab)  # the module's inventory, without labcn5
        pxe.apply(lab, "diskless")  # discovery off again: no answer to an unknown MAC
