"""Diskless machines in a lab run: QEMU VMs that PXE-boot from the lab's boot server, and what
their serial console says on the way (issue 12).

A diskless VM has no agent (nothing of ours runs in it before its image does): what it does is
read from its console (the firmware's and iPXE's lines, the kernel's, the initramfs's, systemd's)
and from the master. ``Boot`` follows the console file and stamps the first time each milestone
line appeared, so a test waits for what the machine itself reports, and a bench gets the times
between milestones.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from . import salt as labsalt
from . import vm as labvm
from .registry import REPO, Run

SERVER, IMAGE = "labboot1", "compute"
# Diskless nodes the example inventory gets for a run (add_nodes): QEMU VMs, not namespace hosts.
NODES = {"labcn3": "52:54:00:0b:00:43", "labcn4": "52:54:00:0b:00:44"}
NODESET = """
  - nodeset: labcn[3-4]         # diskless QEMU VMs booted from labboot1 (hpclab.pxe)
    role: cn
    image: compute
    interfaces:
      admin: {name: eth0, ip: 10.11.0.43, mac: '52:54:00:0b:00:43'}
"""

# What a diskless boot prints, in order (docs/diskless.md "Diskless VMs in the lab"): iPXE from
# the NIC's ROM (SeaBIOS copies its screen to the serial port), the node's menu chained over HTTP,
# the kernel, the initramfs fetching the image, systemd from the image, the node's identity (just
# before its minion starts) and hpcnet-config-apply's end, both written to the console by the
# image's own units (systemd stops showing unit status there once the boot has a getty).
MILESTONES = {
    "ipxe": r"iPXE \d",
    "menu": r"menus/\S+\.ipxe\.\.\. ok",
    "kernel": r"Linux version \d",
    "image": r"hpcnet: fetching http",
    "systemd": r"Welcome to Debian",
    "identity": r"hpcnet: identity ",
    "key": r"hpcnet: key accepted",  # hpcnet-first-contact done: the boot's salt-call starts
    "applied": r"hpcnet: configuration applied",
}
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FAILED = re.compile(r"Kernel panic|hpcnet: could not fetch")
# hpcnet-config-apply is retried (Restart=on-failure: the master may not have accepted the key yet,
# or be busy with a boot storm); this many failed runs end the wait.
APPLY_FAILED, APPLY_TRIES = "hpcnet: configuration failed", 3


def admin_bridge(run: Run) -> str:
    return run.name("admin")


def add_nodes(lab) -> None:
    """The example inventory plus labcn[3-4] (``NODES``), as the run's pillar override."""
    text = (REPO / "pillar" / "cluster.sls").read_text().rstrip()
    if not text.endswith("'52:54:00:0c:00:fa'}"):
        raise RuntimeError("pillar/cluster.sls no longer ends with labinet1's entry: update hpclab.pxe.NODESET")
    lab.set_pillar("cluster.sls", text + "\n" + NODESET)


def keys(lab) -> dict[str, list[str]]:
    """The master's minion keys by status (salt-key -L)."""
    rc, out, err = lab.exec(lab.topo.master.name, labsalt.cli_argv(lab.run, ["-L", "--out=json"], tool="salt-key"))
    if rc != 0:
        raise RuntimeError(f"salt-key -L: {err.strip()}")
    return json.loads(out)


def accepted_key(lab, node: str) -> str | None:
    """``node``'s accepted public key on the master (None: none accepted), seen from this machine
    without a salt-key run (a Python start each: polled every second, it would take CPU from the
    VMs being timed). The master writes inside labadm1, so its new keys land in that host's upper
    layer."""
    minions = labsalt.config_dir(lab.run, "master") / "pki" / "master" / "minions"
    upper = lab.run.dir / "hosts" / lab.topo.master.name / "upper" / minions.relative_to("/")
    try:
        return (upper / node).read_text()
    except FileNotFoundError:
        return None


def accepted(lab, node: str) -> bool:
    """``node``'s key is accepted on the master (``accepted_key``)."""
    return accepted_key(lab, node) is not None


def forget(lab, nodes: list[str]) -> None:
    """Delete ``nodes``' keys on the master (a powered-off diskless node's key is stale)."""
    for node in nodes:
        lab.exec(lab.topo.master.name, labsalt.cli_argv(lab.run, ["-y", "-d", node], tool="salt-key"))


def answers(lab, node: str, timeout: float = 600) -> float:
    """Wait until ``node``'s minion answers the master (a test's first call after a boot must not
    race the minion's connection). Seconds waited."""
    return labsalt.wait_minions(lambda argv, t: lab.exec(lab.topo.master.name, argv, timeout=t), lab.run,
                                [node], timeout=timeout, progress=lambda _: None, slow=[node])


def apply(lab, sls: str, timeout: float = 900) -> dict:
    """``state.apply sls`` on the boot server; its states, failing on any failed one."""
    data = lab.salt_json([SERVER, "state.apply", sls, "-t", str(timeout)], timeout=timeout + 120)
    states = data.get(SERVER)
    if not isinstance(states, dict):
        raise RuntimeError(f"state.apply {sls} on {SERVER}: {data}")
    bad = {k: s.get("comment") for k, s in states.items() if s.get("result") is False}
    if bad:
        raise RuntimeError(f"state.apply {sls} on {SERVER} failed: {json.dumps(bad, indent=1)[-4000:]}")
    return states


def serve(lab) -> list[str]:
    """The image built (its mirror phases by ``lab image`` first) and served by the boot server
    with every node's lease and menu: ``diskless.image``, then ``diskless`` (its boot side included).
    Returns the phases the boot server ran."""
    states = apply(lab, "diskless.image", timeout=1500)
    built = next(s for s in states.values() if s["__id__"] == f"diskless-image-diskless-image_built-{IMAGE}")
    # Each applied step in words, e.g. "add phase compute configure" (hpc_change.converge).
    ran = [line.split()[-1] for line in (built["changes"] or {}).get("applied", []) if line.startswith("add phase")]
    apply(lab, "diskless")
    return ran


@dataclass
class Boot:
    """One power-on of a diskless VM, followed from its console."""

    run: Run
    name: str
    mac: str
    memory_mb: int = 1024
    vm: labvm.Vm | None = None
    started: float = 0.0
    seen: dict[str, float] = field(default_factory=dict)  # milestone -> seconds after power-on

    def power_on(self) -> Boot:
        # QEMU truncates the console file when it opens it, but only once it runs: the last
        # boot's lines move aside first, so none of them is taken for this boot's.
        log = self.run.dir / f"vm-{self.name}" / "console.log"
        if log.exists():
            log.replace(log.with_name("console.log.previous"))
        self.seen, self.started = {}, time.monotonic()
        tap = self.run.name("pxe" + "".join(c for c in self.name if c.isdigit()))
        nic = labvm.Nic(tap, self.mac, admin_bridge(self.run))
        self.vm = labvm.start_pxe_vm(self.run, self.name, nic, memory_mb=self.memory_mb)
        return self

    def power_off(self) -> None:
        if self.vm is not None:
            labvm.stop_vm(self.vm)
            self.vm = None

    def reboot(self) -> Boot:
        """Off, then on with the same MAC: a reset (its RAM root, minion key included, is gone)."""
        self.power_off()
        return self.power_on()

    def text(self) -> str:
        try:
            return self.vm.console_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def flat(self) -> str:
        """The console without line breaks and colour codes: iPXE wraps its lines at 80 columns,
        wherever a word is (a milestone is looked for in this)."""
        return ANSI.sub("", self.text()).replace("\r", "").replace("\n", "")

    def saw(self, pattern: str) -> bool:
        return re.search(pattern, self.flat()) is not None

    def poll(self) -> str:
        """Stamp the milestones that appeared since the last look; the console text."""
        text, now = self.flat(), time.monotonic() - self.started
        for name, pattern in MILESTONES.items():
            if name not in self.seen and re.search(pattern, text):
                self.seen[name] = now
        return self.text()

    def check(self, waiting_for: str) -> None:
        """Fail at once on a failure line, too many failed configuration runs or a dead VM, with
        the console's tail."""
        text = self.text()
        if bad := FAILED.search(self.flat()):
            raise AssertionError(f"{self.name}: {bad.group(0)!r} on the console:\n{tail(text)}")
        if self.flat().count(APPLY_FAILED) >= APPLY_TRIES:
            raise AssertionError(f"{self.name}: hpcnet-config-apply failed {APPLY_TRIES} times:\n{tail(text)}")
        if not labvm.alive(self.vm):
            raise AssertionError(f"{self.name}: QEMU exited before {waiting_for}:\n{tail(text)}")

    def wait(self, milestone: str, timeout: float) -> float:
        """Seconds from power-on until ``milestone`` showed on the console."""
        wait_all([self], milestone, timeout)
        return self.seen[milestone]


def wait_all(boots: list[Boot], milestone: str, timeout: float) -> None:
    """Wait until every boot showed ``milestone``, looking at all of them in turn, so each one's
    milestones are stamped when they appear (waiting for one, then the next, stamped the second's
    at the first's end)."""
    deadline = time.monotonic() + timeout
    pending = list(boots)
    while True:
        for boot in list(pending):
            boot.poll()
            if milestone in boot.seen:
                pending.remove(boot)
            else:
                boot.check(milestone)
        if not pending:
            return
        if time.monotonic() > deadline:
            boot = pending[0]
            raise TimeoutError(f"{boot.name}: no {milestone} ({MILESTONES[milestone]!r}) after "
                               f"{timeout:.0f} s; seen {boot.seen}; console:\n{tail(boot.text())}")
        time.sleep(0.5)


def tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])
