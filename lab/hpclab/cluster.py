"""The example cluster on one machine, built from the pillar: bridges, hosts, VMs, firewall, Salt.

One bridge per pillar network (``<prefix>-admin``, ``-wan``, ``-ib``). Every inventory host is a
lab host (netns + mount/UTS/IPC/PID namespaces over an overlay of /, see host.py) with the
inventory's interface names, MACs and addresses, except the LVS directors (role ``lvs``), which
are QEMU VMs (vm.py: the host kernel has no IPVS) with tap NICs on the same bridges.

Default routes: a host on ``wan`` goes via the wan gateway, else a host on ``ib`` via the ib
gateway (compute nodes), else none (admin-only hosts); the gateway host itself has none.
The firewall host (role ``fw``, labfw1) forwards, and drops what is forwarded from ib to wan
(the site policy "nothing out") with a named nft counter in its own netns. It is lab scaffolding
standing in for the site firewall: the lab configures it, not Salt.

Salt: the master runs in the admin host (role ``adm``), a minion in every other host and VM
(salt.py). ``<run>/cluster.json`` keeps the plan (hosts, interfaces, the root-side link of each
interface) so every ``lab`` command works from it and the run's registry.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from . import host as labhost
from . import loadavg as labload
from . import net
from . import salt as labsalt
from . import vm as labvm
from .registry import LAB_ROOT, REPO, Run

if str(REPO / "_utils") not in sys.path:
    sys.path.insert(0, str(REPO / "_utils"))
import hpc_pillar  # noqa: E402
from . import dns as labdns  # noqa: E402  (imports _utils' hpc_node)

CURRENT = LAB_ROOT / "current"
DAEMONS = ("sshd", "keepalived", "dnsmasq", "conntrackd", "salt-minion")
VM_ROLES = ("lvs",)
VM_MEMORY_MB = int(os.environ.get("HPCLAB_VM_MEMORY_MB", "768"))  # see lab/README.md: a salt-minion needs room
FW_TABLE = "hpclab_fw"
FW_COUNTER = "ib_to_wan_drop"

Progress = Callable[[str], None]


# ---------------------------------------------------------------- the plan


@dataclass
class Iface:
    network: str
    name: str
    ip: str
    prefixlen: int
    mac: str | None
    link: str = ""  # the root-side end: veth (ns host) or tap (VM)

    @property
    def cidr(self) -> str:
        return f"{self.ip}/{self.prefixlen}"


@dataclass
class Node:
    name: str
    role: str
    kind: str  # "ns" | "vm"
    ifaces: list[Iface]
    gateway: str | None = None

    def iface(self, network: str) -> Iface | None:
        return next((i for i in self.ifaces if i.network == network), None)


@dataclass
class Topology:
    networks: dict[str, dict]  # name -> {cidr, gateway}
    nodes: dict[str, Node] = field(default_factory=dict)

    @property
    def master(self) -> Node:
        return next(n for n in self.nodes.values() if n.role == "adm")

    @property
    def master_ip(self) -> str:
        return self.master.iface("admin").ip

    @property
    def minions(self) -> list[str]:
        return [n for n in self.nodes if n != self.master.name]

    def to_json(self) -> dict:
        return {"networks": self.networks, "nodes": {k: asdict(v) for k, v in self.nodes.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Topology:
        nodes = {}
        for name, n in data["nodes"].items():
            nodes[name] = Node(n["name"], n["role"], n["kind"], [Iface(**i) for i in n["ifaces"]], n["gateway"])
        return cls(data["networks"], nodes)


def load_pillar(pillar_dir: Path = REPO / "pillar", overrides: Path | None = None) -> dict:
    """The example pillar: ``pillar/*.sls`` are plain YAML assigned to every host; a file of the
    same name in ``overrides`` replaces one (as the lab master's first pillar root does)."""
    files = {p.name: p for p in pillar_dir.glob("*.sls")}
    files |= {p.name: p for p in overrides.glob("*.sls")} if overrides else {}
    data: dict = {}
    for name in sorted(files):
        if name != "top.sls":
            data.update(yaml.safe_load(files[name].read_text()) or {})
    return data


COMPUTE_NODES = "labcn[1-2]"  # the example's compute nodes, wherever the pillar names them


def grow_compute(run: Run, count: int) -> list[Path]:
    """The example pillar with ``count`` compute nodes: every pillar file naming labcn[1-2] (the
    inventory, policy routing's hosts, ...) gets labcn[1-count] in the run's pillar overrides.
    Addresses and MACs follow the nodeset's own increments."""
    written = []
    for source in sorted((REPO / "pillar").glob("*.sls")):
        text = source.read_text()
        if COMPUTE_NODES in text:
            target = labsalt.pillar_overrides_dir(run) / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text.replace(COMPUTE_NODES, f"labcn[1-{count}]"))
            written.append(target)
    if not written:
        raise RuntimeError(f"no pillar file names {COMPUTE_NODES}: nothing to grow")
    return written


def topology(pillar: dict | None = None) -> Topology:
    """The lab's plan from the pillar (validated by the schema on the way)."""
    pillar = load_pillar() if pillar is None else pillar
    sections = hpc_pillar.load(pillar)
    networks = {
        name: {"cidr": str(n.cidr), "gateway": str(n.gateway) if n.gateway else None}
        for name, n in sections["networks"].items()
    }
    topo = Topology(networks)
    for name, h in hpc_pillar.inventory(pillar).items():
        ifaces = [
            Iface(net_name, i.name, str(i.ip), ipaddress.ip_network(networks[net_name]["cidr"]).prefixlen,
                  str(i.mac) if i.mac else None)
            for net_name, i in h.interfaces.items()
        ]
        kind = "vm" if h.role in VM_ROLES else "ns"
        topo.nodes[name] = Node(name, h.role, kind, ifaces, _gateway(networks, ifaces))
    return topo


def _gateway(networks: dict, ifaces: list[Iface]) -> str | None:
    mine = {i.ip for i in ifaces}
    on = {i.network for i in ifaces}
    for network in ("wan", "ib"):
        gw = networks.get(network, {}).get("gateway")
        if network in on and gw:
            return None if gw in mine else gw
    return None


# ---------------------------------------------------------------- a lab run


class Lab:
    """A lab run: its registry, its plan, and ways into its hosts."""

    def __init__(self, run: Run, topo: Topology) -> None:
        self.run = run
        self.topo = topo
        self.timings: dict[str, float] = {}  # filled by up(): minions_s, up_s

    @property
    def prefix(self) -> str:
        return self.run.prefix

    @property
    def state_file(self) -> Path:
        return self.run.dir / "cluster.json"

    def save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"prefix": self.prefix, **self.topo.to_json()}, indent=1) + "\n")
        tmp.rename(self.state_file)

    @classmethod
    def load(cls, prefix: str | None = None) -> Lab:
        run = Run(prefix or current_prefix())
        try:
            data = json.loads((run.dir / "cluster.json").read_text())
        except FileNotFoundError:
            raise LookupError(f"no lab run {run.prefix!r} (no {run.dir}/cluster.json)") from None
        return cls(run, Topology.from_json(data))

    def node(self, name: str) -> Node:
        try:
            return self.topo.nodes[name]
        except KeyError:
            raise LookupError(f"no host {name!r} in lab {self.prefix} (hosts: {', '.join(self.topo.nodes)})") from None

    def host(self, name: str) -> labhost.Host:
        h = labhost.load_host(self.run, name)
        if h is None:
            raise LookupError(f"lab host {name} of run {self.prefix} is not running")
        return h

    def vm(self, name: str) -> labvm.Vm:
        label = f"{self.prefix}-qemu-{name}"
        for rec in reversed(self.run.records()):
            if rec.kind == "process" and rec.name == label and rec.pid:
                start = rec.extra.get("starttime")
                if labvm._pid_matches(rec.pid, start):
                    return labvm.Vm(name, name, self.run.dir / f"vm-{name}", rec.pid, start)
                break
        raise LookupError(f"lab VM {name} of run {self.prefix} is not running")

    # ------------------------------------------------------------ running things inside

    def exec(self, name: str, argv: list[str], timeout: float = 120, stdin: str | None = None) -> tuple[int, str, str]:
        """Run argv inside host or VM ``name``; (rc, stdout, stderr). TimeoutError past timeout."""
        if self.node(name).kind == "vm":
            return labvm.vm_exec(self.vm(name), argv, timeout=timeout, stdin=stdin or "")
        try:
            p = labhost.host_exec(self.host(name), argv, input=stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{argv} timed out after {timeout} s in {name}") from None
        return p.returncode, p.stdout, p.stderr

    def enter_argv(self, name: str, argv: list[str]) -> list[str]:
        """nsenter argv that runs ``argv`` in ns host ``name`` with the caller's terminal."""
        return [*labhost.NSENTER, "-t", str(self.host(name).pid), "--", *argv]

    def salt(self, args: list[str], timeout: float = 300) -> tuple[int, str, str]:
        """``salt ARGS`` in the master's host with the lab master's config; (rc, out, err)."""
        return self.exec(self.topo.master.name, labsalt.cli_argv(self.run, args), timeout=timeout)

    def set_pillar(self, name: str, text: str | None) -> None:
        """Pillar file ``name`` of the run's overrides (the master's first pillar root: it
        replaces the checkout's file of that name); None removes it. Written from inside the
        master's host: a file put from outside into its lower layer would not be seen there."""
        target = labsalt.pillar_overrides_dir(self.run) / name
        argv = ["sh", "-c", f"cat > {target}"] if text is not None else ["rm", "-f", str(target)]
        rc, _, err = self.exec(self.topo.master.name, argv, stdin=text)
        if rc != 0:
            raise RuntimeError(f"pillar override {name}: {err.strip()}")

    def salt_json(self, args: list[str], timeout: float = 300) -> dict:
        """``salt ARGS --out=json --static``, parsed."""
        _, out, _ = self.salt([*args, "--out=json", "--static"], timeout=timeout)
        return labsalt.parse_json(out)

    # ------------------------------------------------------------ processes

    def processes(self) -> dict[str, list[tuple[int, str, str]]]:
        """Processes of each ns host (root-ns PID, comm, args), by PID-namespace membership."""
        by_ns: dict[str, str] = {}
        for name, node in self.topo.nodes.items():
            if node.kind == "ns":
                with contextlib.suppress(LookupError, OSError):
                    by_ns[os.readlink(f"/proc/{self.host(name).pid}/ns/pid")] = name
        out: dict[str, list[tuple[int, str, str]]] = {name: [] for name in by_ns.values()}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ns = os.readlink(entry / "ns/pid")
                if ns not in by_ns:
                    continue
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    continue  # dead, not yet reaped by the host's PID 1
                comm = (entry / "comm").read_text().strip()
                args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            out[by_ns[ns]].append((int(entry.name), comm, args))
        return out

    def vm_load(self, seconds: float = 5.0) -> dict[str, float]:
        """Each VM's use of host cores over the next ``seconds`` (emulated: a busy guest takes
        a whole core, which the namespace hosts then do without)."""
        vms = [self.vm(n) for n, node in self.topo.nodes.items() if node.kind == "vm"]
        before = {v.name: labvm.cpu_seconds(v.pid) for v in vms}
        time.sleep(seconds)
        return {v.name: round((labvm.cpu_seconds(v.pid) - before[v.name]) / seconds, 2) for v in vms}

    def wait_vms_idle(self, below: float = 0.5, timeout: float = 600,
                      progress: Callable[[str], None] = lambda _msg: None) -> float:
        """Wait until every VM uses less than ``below`` of a core (booting, or running a Salt job,
        a VM takes a whole core; idle, ~0.14); the seconds waited. Gives up at ``timeout``."""
        started = time.monotonic()
        while True:
            load = self.vm_load()
            progress(f"VMs' host CPU (cores): {load}")
            if all(v < below for v in load.values()) or time.monotonic() - started > timeout:
                return time.monotonic() - started

    def vm_processes(self, name: str) -> list[tuple[int, str, str]]:
        """Processes inside VM ``name`` (guest PID, comm, args)."""
        rc, out, _ = self.exec(name, ["ps", "-eo", "pid=,comm=,args="], timeout=60)
        procs = []
        for line in out.splitlines():
            parts = line.split(None, 2)
            if len(parts) >= 2:
                procs.append((int(parts[0]), parts[1], parts[2] if len(parts) > 2 else ""))
        return procs

    def host_processes(self, name: str) -> list[tuple[int, str, str]]:
        if self.node(name).kind == "vm":
            return self.vm_processes(name)
        return self.processes().get(name, [])

    def daemon_pids(self, name: str, daemon: str) -> list[int]:
        """PIDs of ``daemon`` in host ``name`` (root-ns PIDs for ns hosts, guest PIDs for VMs)."""
        return [pid for pid, comm, args in self.host_processes(name) if daemon_of(comm, args) == daemon]

    def all_pids(self) -> list[int]:
        """Root-ns PIDs of every process of the run: everything in its hosts, QEMU, and recorded ones."""
        pids = {pid for procs in self.processes().values() for pid, _, _ in procs}
        for rec in self.run.records():
            if rec.kind == "process" and rec.pid and labhost.same_process(rec.pid, rec.extra.get("starttime")):
                pids.add(rec.pid)
        return sorted(pids)

    def rss_mb(self) -> float:
        total = 0
        for pid in self.all_pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024

    # ------------------------------------------------------------ faults

    def kill(self, name: str, daemon: str, sig: int = signal.SIGKILL) -> list[int]:
        pids = self.daemon_pids(name, daemon)
        if not pids:
            raise LookupError(f"no {daemon} running in {name}")
        if self.node(name).kind == "vm":
            rc, _, err = self.exec(name, ["kill", f"-{int(sig)}", *map(str, pids)])
            if rc != 0:
                raise RuntimeError(f"kill in {name}: {err.strip()}")
        else:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        return pids

    def flap(self, name: str, iface: str, down_s: float = 0.0) -> None:
        """``ip link set IFACE down``, then up. The kernel drops every static route through the
        interface; the host's own default route is put back (``restore_default_route``), the
        rest (policy routing's tables) is for the states to heal."""
        script = f"ip link set {iface} down && sleep {down_s} && ip link set {iface} up"
        rc, _, err = self.exec(name, ["sh", "-c", script])
        if rc != 0:
            raise RuntimeError(f"flap {iface} in {name}: {err.strip()}")
        self.restore_default_route(name)

    def restore_default_route(self, name: str) -> None:
        """Put back the default route `lab up` gave the host, as the site's network configuration
        (ifupdown, networkd) would on a real node after a link flap. Lab setup, not Salt's."""
        gateway = self.node(name).gateway
        if gateway:
            rc, _, err = self.exec(name, ["ip", "route", "replace", "default", "via", gateway])
            if rc != 0:
                raise RuntimeError(f"default route via {gateway} in {name}: {err.strip()}")

    def partition(self, name: str, up: bool = False, ifaces: list[str] | None = None) -> list[str]:
        """Set the root-side links of host ``name`` down (cut off: the host sees its carrier go)
        or up again (heal): all of them, or those of the interfaces named in ``ifaces``."""
        node = self.node(name)
        unknown = sorted(set(ifaces or ()) - {i.name for i in node.ifaces})
        if unknown:
            raise LookupError(f"{name} has no interface {', '.join(unknown)} "
                              f"(it has {', '.join(i.name for i in node.ifaces)})")
        links = [i.link for i in node.ifaces if i.link and (not ifaces or i.name in ifaces)]
        for link in links:
            net.set_link(self.run, link, up)
        return links

    # ------------------------------------------------------------ status

    def status(self) -> list[dict]:
        """One row per host: name, role, kind, addresses, minion answering, daemons running."""
        try:
            # -t 15: a minion in a TCG VM needs ~8 s for test.ping.
            _, out, _ = self.salt(labsalt.ping_args(self.topo.minions, timeout=15), timeout=60)
            answering = labsalt.answered(out)
        except (LookupError, TimeoutError, OSError):
            answering = set()
        procs = self.processes()
        rows = []
        for name, node in self.topo.nodes.items():
            if node.kind == "vm":
                try:
                    plist = self.vm_processes(name)
                    alive = True
                except (LookupError, OSError, TimeoutError):
                    plist, alive = [], False
            else:
                plist = procs.get(name, [])
                alive = name in procs
            found = {daemon_of(c, a) for _, c, a in plist} - {None}
            if name == self.topo.master.name:
                minion = "master" if any(daemon_of(c, a) == "salt-master" for _, c, a in plist) else "master down"
            else:
                minion = "yes" if name in answering else "no"
            rows.append({
                "host": name, "role": node.role, "kind": node.kind, "up": alive,
                "addresses": " ".join(f"{i.name}={i.cidr}" for i in node.ifaces),
                "minion": minion,
                "daemons": [d for d in DAEMONS if d in found],
            })
        return rows


def daemon_of(comm: str, args: str) -> str | None:
    """Which of DAEMONS (or salt-master) a process is, from its comm and command line."""
    words = args.split()
    names = {comm, *(Path(w).name for w in words[:2])}
    if args.startswith("sshd:"):
        names.add("sshd")
    for daemon in (*DAEMONS, "salt-master"):
        if daemon in names or daemon[:15] == comm:
            return daemon
    # Salt's processes retitle themselves: "... salt-minion ... MinionProcessManager".
    for daemon in ("salt-minion", "salt-master"):
        if any(w.endswith(f"/{daemon}") for w in words[:3]):
            return daemon
    return None


# ---------------------------------------------------------------- up and down


def new_prefix() -> str:
    while True:
        prefix = "l" + secrets.token_hex(2)
        if not (LAB_ROOT / prefix).exists():
            return prefix


def current_prefix() -> str:
    try:
        prefix = CURRENT.read_text().strip()
    except FileNotFoundError:
        prefix = ""
    if not prefix:
        raise LookupError(f"no current lab ({CURRENT} is absent): `lab up` first, or pass --prefix")
    return prefix


def _ip_batch(netns: str, lines: list[str]) -> None:
    p = subprocess.run(["ip", "-n", netns, "-batch", "-"], input="\n".join(lines) + "\n",
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"ip -n {netns} -batch: {p.stderr.strip()}")


def _firewall_rules(topo: Topology, node: Node) -> str:
    ib, wan = node.iface("ib"), node.iface("wan")
    return f"""table inet {FW_TABLE}
delete table inet {FW_TABLE}
table inet {FW_TABLE} {{
  counter {FW_COUNTER} {{ }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname "{ib.name}" oifname "{wan.name}" counter name {FW_COUNTER} drop
    ip saddr {topo.networks['ib']['cidr']} oifname "{wan.name}" counter name {FW_COUNTER} drop
  }}
}}
"""


def _setup_firewall(lab: Lab, node: Node) -> None:
    h = lab.host(node.name)
    for argv, stdin in ((["sysctl", "-qw", "net.ipv4.ip_forward=1"], None),
                        (["nft", "-f", "-"], _firewall_rules(lab.topo, node))):
        p = labhost.host_exec(h, argv, input=stdin, timeout=30)
        if p.returncode != 0:
            raise RuntimeError(f"firewall on {node.name}: {' '.join(argv)}: {p.stderr.strip()}")


def fw_drops(lab: Lab, name: str = "labfw1") -> int:
    """Packets labfw1 dropped going from ib to wan (its named nft counter)."""
    rc, out, err = lab.exec(name, ["nft", "-j", "list", "counter", "inet", FW_TABLE, FW_COUNTER])
    if rc != 0:
        raise RuntimeError(f"nft on {name}: {err.strip()}")
    for item in json.loads(out)["nftables"]:
        if "counter" in item:
            return int(item["counter"]["packets"])
    raise RuntimeError(f"no counter {FW_COUNTER} on {name}")


def _start_ns_host(lab: Lab, node: Node, bridges: dict[str, str]) -> None:
    h = labhost.start_host(lab.run, node.name)
    lines = []
    for iface in node.ifaces:
        iface.link = net.make_veth_into(lab.run, h, bridges[iface.network], iface.name, mac=iface.mac)
        lines += [f"addr add {iface.cidr} dev {iface.name}", f"link set {iface.name} up"]
    if node.gateway:
        lines.append(f"route add default via {node.gateway}")
    _ip_batch(h.netns, lines)


# The directory service of seed 003's users, as a compute node sees it (LDAP in production):
# aliprod, alise, rgrosso are chosen by name; alicepri has `alice` as primary group, alicesup
# only as a supplementary group; bob is anyone else.
ACCOUNTS = [
    "groupadd -g 3000 alice",
    "useradd -M -N -u 3001 -g 100 aliprod",
    "useradd -M -N -u 3002 -g 100 alise",
    "useradd -M -N -u 3003 -g 100 rgrosso",
    "useradd -M -N -u 3004 -g alice alicepri",
    "useradd -M -N -u 3005 -g 100 -G alice alicesup",
    "useradd -M -N -u 3006 -g 100 bob",
]


def _add_accounts(lab: Lab, node: Node) -> None:
    for command in ACCOUNTS:
        _check(lab, node.name, command.split())


# Logins through the SSH VIP (issue 11): a real user on every frontend whose key the client holds.
# Each frontend gets host keys of its own first (the lab's hosts would otherwise share this
# machine's /etc/ssh), so a test shows that the frontend states made them identical.
LOGIN_USER = "hpclogin"
LOGIN_KEY = "/root/.ssh/hpclab_login"  # in the client host


def _setup_logins(lab: Lab) -> None:
    key = lab.run.dir / "login_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{lab.prefix}-login", "-f", str(key)],
                   check=True, capture_output=True)
    public = key.with_suffix(".pub").read_text()
    home = f"/home/{LOGIN_USER}"
    for node in lab.topo.nodes.values():
        if node.role == "fe":
            _check(lab, node.name, ["sh", "-c", "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A -q"])
            _check(lab, node.name, ["useradd", "-m", "-u", "3100", "-s", "/bin/sh", LOGIN_USER])
            _check(lab, node.name, ["sh", "-c", f"mkdir -p {home}/.ssh && cat > {home}/.ssh/authorized_keys && "
                                    f"chown -R {LOGIN_USER} {home}/.ssh && chmod 700 {home}/.ssh"], stdin=public)
        elif node.role == "client":
            _check(lab, node.name, ["sh", "-c", f"mkdir -p -m 700 /root/.ssh && umask 077 && cat > {LOGIN_KEY}"],
                   stdin=key.read_text())


def _start_vm(lab: Lab, node: Node, bridges: dict[str, str], index: int, kernel: labvm.KernelImage) -> labvm.Vm:
    nics = []
    for k, iface in enumerate(node.ifaces):
        iface.mac = iface.mac or labvm.random_mac()
        iface.link = lab.run.name(f"vm{index}.{k}")
        nics.append(labvm.Nic(iface.link, iface.mac, bridges[iface.network], iface.name, (iface.cidr,)))
    return labvm.start_vm(lab.run, node.name, nics, hostname=node.name, gateway=node.gateway,
                          memory_mb=VM_MEMORY_MB, kernel=kernel)


def _check(lab: Lab, name: str, argv: list[str], stdin: str | None = None) -> str:
    rc, out, err = lab.exec(name, argv, timeout=60, stdin=stdin)
    if rc != 0:
        raise RuntimeError(f"{name}: {' '.join(argv)}: rc {rc}: {err.strip()}")
    return out


def _spawn_minion_vm(lab: Lab, vm: labvm.Vm, boot_timeout: float) -> None:
    labvm.wait_ready(vm, timeout=boot_timeout)
    _check(lab, vm.name, labsalt.etc_link_argv(lab.run, vm.name))
    cdir = labsalt.config_dir(lab.run, vm.name)
    labvm.vm_spawn(vm, labsalt.minion_argv(lab.run, vm.name), log=str(cdir / "minion.out"))


def up(prefix: str | None = None, progress: Progress = print, minion_timeout: float = 240,
       keep_on_failure: bool = False, set_current: bool = True, compute: int | None = None) -> Lab:
    """Build the example cluster; return once every minion answers test.ping through the master.

    ``set_current``: make it the run other ``lab`` commands default to (tests and the bench don't).
    ``compute``: that many compute nodes (namespace hosts, each with its own minion) instead of
    the pillar's two (``grow_compute``).
    """
    t0 = time.monotonic()
    step = lambda msg: progress(f"[{time.monotonic() - t0:5.1f} s] {msg}")  # noqa: E731
    for dead in labhost.leftovers():
        progress(f"leftover of a dead lab run: {dead} (remove it with `lab down --prefix {dead}`)")
    prefix = prefix or new_prefix()
    run = Run(prefix)
    if run.path.exists():
        raise RuntimeError(f"lab run {prefix} exists already: `lab down --prefix {prefix}` first")
    run.record("dir", str(run.dir))
    if compute:
        grow_compute(run, compute)
    pillar = load_pillar(overrides=labsalt.pillar_overrides_dir(run))
    topo = topology(pillar)
    kernel = labvm.prepare_kernel() if any(n.kind == "vm" for n in topo.nodes.values()) else None
    lab = Lab(run, topo)
    if set_current:
        CURRENT.write_text(prefix + "\n")
    step(f"lab {prefix}: {len(topo.nodes)} hosts, run dir {run.dir}")
    try:
        vm_names = [n.name for n in topo.nodes.values() if n.kind == "vm"]
        labsalt.write_configs(run, topo.master_ip, topo.minions, vms=vm_names)
        bridges = {name: net.make_bridge(run, name) for name in topo.networks}
        vms = []
        for index, node in enumerate(n for n in topo.nodes.values() if n.kind == "vm"):
            vms.append(_start_vm(lab, node, bridges, index, kernel))
        lab.save()
        step(f"bridges {', '.join(bridges.values())}; booting VMs {', '.join(v.name for v in vms)}")
        for node in topo.nodes.values():
            if node.kind == "ns":
                _start_ns_host(lab, node, bridges)
                lab.save()
        step("hosts up: " + ", ".join(n.name for n in topo.nodes.values() if n.kind == "ns"))
        # Once the hosts are up (it exits when none is): each host's own /proc/loadavg.
        step(f"loadavg daemon (each host's own /proc/loadavg): PID {labload.start(run)}")
        for node in topo.nodes.values():
            if node.role == "cn":
                _add_accounts(lab, node)
        step("compute nodes: users aliprod, alise, rgrosso, alicepri, alicesup, bob; group alice")
        _setup_logins(lab)
        step(f"frontends: user {LOGIN_USER}, host keys of their own; the client holds the login key")
        for node in topo.nodes.values():
            if node.role == "fw":
                _setup_firewall(lab, node)
                step(f"{node.name}: forwarding, nft table {FW_TABLE} drops ib -> wan")
        dns_host = next(n for n in topo.nodes.values() if n.role == "fw")
        if labdns.start(lab, pillar, dns_host, _ip_batch):
            step(f"{dns_host.name}: the site's DNS, {', '.join(labdns.nameservers(pillar))} (hpclab.dns)")
        master = lab.host(topo.master.name)
        _check(lab, master.name, labsalt.etc_link_argv(run, "master", "master"))
        labhost.host_spawn(master, labsalt.master_argv(run), master.dir / "salt-master.log")
        for node in topo.nodes.values():
            if node.kind == "ns" and node.name != topo.master.name:
                h = lab.host(node.name)
                _check(lab, node.name, labsalt.etc_link_argv(run, node.name))
                labhost.host_spawn(h, labsalt.minion_argv(run, node.name), h.dir / "salt-minion.log")
        step(f"salt-master on {topo.master.name} ({topo.master_ip}); minions started in the namespace hosts")
        for v in vms:
            _spawn_minion_vm(lab, v, boot_timeout=120)
            step(f"{v.name}: booted, salt-minion started")
        labsalt.wait_minions(lambda argv, t: lab.exec(topo.master.name, argv, timeout=t), run, topo.minions,
                             timeout=minion_timeout, progress=step, slow=vm_names)
        lab.timings["minions_s"] = time.monotonic() - t0
        _, out, err = lab.salt(["*", "saltutil.sync_all", "--out=json", "--static", "-t", "300"], timeout=400)
        synced = labsalt.parse_json(out)
        missing = [m for m in topo.minions if not isinstance(synced.get(m), dict)]
        if missing:
            raise RuntimeError(f"saltutil.sync_all did not return from {', '.join(missing)}: {out[-500:]}{err[-500:]}")
        lab.timings["up_s"] = time.monotonic() - t0
        step(f"lab {prefix} up: {len(topo.minions)} minions answer; extension modules synced")
    except BaseException:
        if keep_on_failure:
            progress(f"lab {prefix} failed; kept for inspection (`lab down --prefix {prefix}` removes it)")
        else:
            progress(f"lab {prefix} failed; tearing it down")
            down(prefix, progress=lambda _m: None)
        raise
    return lab


def down(prefix: str | None = None, progress: Progress = print) -> list[str]:
    """Remove everything run ``prefix`` made, by name and PID, even after a crash; what is left."""
    prefix = prefix or current_prefix()
    run = Run(prefix)
    # QEMU first, gently (vm.py's way: by recorded PID, or by pidfile if the PID was never recorded).
    for rec in reversed(run.records()):
        if rec.kind == "process" and "-qemu-" in rec.name:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                labvm._undo(run, rec)
    labhost.teardown(run)  # processes, netns, links/taps/bridges, mounts, dirs, the run dir
    errors = labvm.teardown(run)  # nothing left to do unless host.teardown missed something
    with contextlib.suppress(FileNotFoundError):
        if CURRENT.read_text().strip() == prefix:
            CURRENT.unlink()
    left = leftovers_of(prefix)
    progress(f"lab {prefix} down" + (f"; LEFT: {', '.join(left)}" if left else "; nothing left"))
    return errors + left


def leftovers_of(prefix: str) -> list[str]:
    """Everything this machine still shows of run ``prefix``: netns, links, processes, mounts, dir."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {n}" for n in netns.split() if n.startswith(f"{prefix}-")]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [f"link {ln.split(':')[1].strip()}" for ln in links.splitlines() if f" {prefix}-" in ln]
    # A zombie holds nothing (memory, netns, files); it waits for its parent, e.g. the process
    # that ran `up` (a test) while another ran `down`, to collect it.
    ps = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True).stdout
    tags = (f"lab:{prefix}-", f"{prefix}-qemu-", f"/hpclab/{prefix}/")
    found += [f"process {ln.strip()}" for ln in ps.splitlines()
              if any(t in ln for t in tags) and not ln.split()[1].startswith("Z")]
    mountinfo = Path("/proc/self/mountinfo").read_text()
    found += [f"mount {ln}" for ln in mountinfo.splitlines() if f"/{prefix}/" in ln]
    if (LAB_ROOT / prefix).exists():
        found.append(f"dir {LAB_ROOT / prefix}")
    return found
