"""Lab "directors": small QEMU/TCG VMs booting Debian's kernel, which has IPVS.

The host kernel has no IPVS, so every lab host that must run real LVS is a VM.
The VM has no disk: its root is the host's ``/`` over virtio-9p (read-only)
with a tmpfs overlay on top, so the project's venv and every Debian tool
(ipvsadm, keepalived, python3) are usable inside and nothing the guest writes
reaches the host. A second, uncached 9p share is the checkout (``registry.REPO``),
mounted at its own path over the guest's /tmp: a file replaced there after boot
(``git checkout``, ``sed -i``) is seen at once, which the cached root would not
show, and a checkout under /tmp is not hidden by the guest's tmpfs. Only the
checkout's ``.venv`` is read through the cached root (speed; it does not change
under a running lab).

Kernel command line understood by the guest init (all optional)::

    hpclab.hostname=NAME                 hostname (also /etc/hostname, /etc/hosts)
    hpclab.if=IFNAME,MAC[,ADDR/LEN...]   one per NIC: the NIC with MAC is renamed
                                         IFNAME, brought up and given the addresses
    hpclab.gw=IP                         default route
    hpclab.checkout=PATH                 mount the share "checkout" at PATH (read-only)

Guest agent protocol (virtio-serial port ``hpclab.agent``, a unix socket on the
host): one JSON object per line each way. Request
``{"id": str, "argv": [...], "timeout": float, "stdin": str?, "detach": bool?, "log": path?}``
or ``{"id": str, "op": "ping"}``; reply ``{"id", "rc", "out", "err", "timed_out", "pid"}``.
A command runs in its own session (setsid) with its output in files, not pipes,
so daemons it starts keep running and never hold the reply up. ``detach`` starts
the command in the background (output to ``log``) and returns its pid at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .registry import REPO, Record, Run

CACHE = Path("/var/cache/hpclab")
QEMU = "qemu-system-x86_64"
MEMORY_MB = 256  # measured: ~35 MB used idle, salt-call --local fits; 9p page cache gets the rest
# QEMU 7.2's default TCG translation cache is 1 GiB and fills to ~400 MB under salt-call;
# 64 MB measured no slower and keeps a VM's RSS near 370 MB.
TB_MB = 64
# The guest CPU TCG emulates. Directors: "max" (CI's tier ran with it). Diskless VMs: "qemu64":
# with "max", glibc, Python and OpenSSL take AVX paths TCG emulates slowly; importing salt.config +
# salt.loader took 7.5-8.9 s with qemu64 against 11.2-11.9 s with max (2026-12-03, side by side).
# But with qemu64 on the directors the integration tier took 3298 s instead of 2564 s (test_lvs_load
# 701 s against 122 s, a director missed a ping): their work is the guest kernel's (timers, IPVS,
# probes), which qemu64 (no TSC-deadline, no x2APIC) makes dearer. So each keeps its own.
DIRECTOR_CPU = "max"
PXE_CPU = "qemu64"
AGENT_PORT = "hpclab.agent"
# The checkout share's 9p cache mode: "none" shows a replaced file at once, "loose" never does.
# Uncached, the venv's imports made `salt-call --local test.ping` take 40-46 s of QEMU CPU instead of
# 17-22 s: the guest reads the checkout's .venv through the cached root instead (INIT).
CHECKOUT_CACHE = "none"
BUSYBOX = Path("/bin/busybox")  # busybox-static: no shared libraries needed
MODULES = (
    "virtio_pci", "virtio_net", "virtio_console", "virtio_rng",
    "9pnet_virtio", "9p", "overlay", "crc32c_generic", "nf_conntrack",
    "ip_vs", "ip_vs_rr", "ip_vs_wlc", "ip_vs_wrr", "ip_vs_sh", "ip_vs_lc",
)  # fmt: skip

# The guest agent: run by busybox init (which reaps orphans) with the host's
# /usr/bin/python3, stdlib only. Kept here so the initramfs hash covers it.
AGENT = r"""
import glob, json, os, select, subprocess, tempfile, time
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}

def port(name):
    while True:
        for p in glob.glob("/sys/class/virtio-ports/*/name"):
            if open(p).read().strip() == name:
                return "/dev/" + p.split("/")[-2]
        time.sleep(0.2)

def spawn(argv, stdin, out, err, cwd):
    return subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, env=ENV,
                            cwd=cwd, start_new_session=True)

def detach(req):
    log = open(req.get("log") or "/dev/null", "ab")
    p = spawn(req["argv"], subprocess.DEVNULL, log, log, req.get("cwd", "/"))
    return {"rc": 0, "out": "", "err": "", "timed_out": False, "pid": p.pid}

def run(req):
    if req.get("op") == "ping":
        return {"rc": 0, "out": "pong", "err": "", "timed_out": False, "pid": None}
    if req.get("detach"):
        return detach(req)
    with tempfile.TemporaryFile() as i, tempfile.TemporaryFile() as o, \
            tempfile.TemporaryFile() as e:
        i.write(req.get("stdin", "").encode()); i.seek(0)
        p = spawn(req["argv"], i, o, e, req.get("cwd", "/"))
        timed_out = False
        try:
            rc = p.wait(req.get("timeout", 60))
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(p.pid, 9)
            rc = p.wait()
        o.seek(0); e.seek(0)
        return {"rc": rc, "out": o.read().decode(errors="replace"),
                "err": e.read().decode(errors="replace"), "timed_out": timed_out,
                "pid": p.pid}

def answer(line):
    try:
        req = json.loads(line)
    except ValueError as exc:
        return {"id": None, "rc": 125, "out": "", "err": "bad request: %s" % exc}
    try:
        rep = run(req)
    except OSError as exc:
        rep = {"rc": 127, "out": "", "err": str(exc), "timed_out": False, "pid": None}
    rep["id"] = req.get("id")
    return rep

def write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]

def main():
    fd = os.open(port("hpclab.agent"), os.O_RDWR)
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    buf = b""
    while True:
        ev = poll.poll(1000)
        if not ev:
            continue
        data = os.read(fd, 65536) if ev[0][1] & select.POLLIN else b""
        if not data:  # host side not connected: nothing to do but wait
            buf = b""
            time.sleep(0.05)
            continue
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            write_all(fd, json.dumps(answer(line)).encode() + b"\n")

main()
"""

# The initramfs /init (busybox sh). @MODULES@ and @MODTREE@ are filled in at build time.
INIT = r"""#!/bin/sh
# hpclab director init, generated by lab/hpclab/vm.py; see its docstring for hpclab.* options.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "hpclab-init: $*"; sleep 2; poweroff -f; }
for m in @MODULES@; do modprobe "$m" || echo "hpclab-init: modprobe $m failed"; done

HN=director; GW=; SPECS=; CO=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    hpclab.hostname=*) HN="${arg#hpclab.hostname=}" ;;
    hpclab.if=*) SPECS="$SPECS ${arg#hpclab.if=}" ;;
    hpclab.gw=*) GW="${arg#hpclab.gw=}" ;;
    hpclab.checkout=*) CO="${arg#hpclab.checkout=}" ;;
  esac
done

# Root: the host's / read-only over 9p, a tmpfs overlay so the guest can write.
mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /lower \
  || fail "cannot mount hostroot over 9p"
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot \
  || fail "cannot mount the overlay"
R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 shm $R/dev/shm
# Fresh /run hides the host's (so no /run/systemd/system: no systemd here). A systemctl without
# systemd running would put Salt's service states in "offline" mode, where they report success
# and do nothing: the guest is a Debian host without systemd, so it has no systemctl either.
mount -t tmpfs -o mode=0755 run $R/run
rm -f $R/usr/bin/systemctl $R/usr/sbin/runlevel
printf '#!/bin/sh\necho unknown\nexit 1\n' > $R/usr/sbin/runlevel
chmod 755 $R/usr/sbin/runlevel
mount -t tmpfs -o mode=1777 tmp $R/tmp
# The checkout, live: uncached, so a file replaced on the host is seen at once (cache=loose keeps
# the old dentry and pages for good). Mounted after /tmp, so a checkout under /tmp is not hidden.
# Its venv comes from the cached root again: uncached, salt-call costs twice the CPU under TCG.
if [ -n "$CO" ]; then
  mkdir -p "$R$CO"
  mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=@CHECKOUT_CACHE@ checkout "$R$CO" \
    || fail "cannot mount the checkout $CO over 9p"
  if [ -d "/lower$CO/.venv" ]; then mount --bind "/lower$CO/.venv" "$R$CO/.venv"; fi
fi
# The whole module tree of this kernel, so modprobe in the guest finds any module.
M=$R/lib/modules/$(uname -r)
mkdir -p $M && mount --bind $R@MODTREE@ $M

hostname "$HN"
echo "$HN" > $R/etc/hostname
echo "127.0.1.1 $HN" >> $R/etc/hosts

ip link set lo up
devbymac() { for d in /sys/class/net/*; do [ "$(cat $d/address)" = "$1" ] && echo "${d##*/}"; done; }
# Rename in two passes through names derived from the MAC, so the wanted names never clash.
for spec in $SPECS; do
  set -- $(echo "$spec" | tr , ' ')
  dev=$(devbymac "$2")
  [ -n "$dev" ] && ip link set "$dev" name "hpc$(echo "$2" | tr -d :)"
done
for spec in $SPECS; do
  set -- $(echo "$spec" | tr , ' ')
  name=$1; tmp="hpc$(echo "$2" | tr -d :)"; shift 2
  ip link set "$tmp" name "$name" || { echo "hpclab-init: no NIC for $spec"; continue; }
  ip link set "$name" up
  for a in "$@"; do ip addr add "$a" dev "$name"; done
done
[ -n "$GW" ] && ip route add default via "$GW"

mkdir -p $R/run/hpclab
cp /agent.py $R/run/hpclab/agent.py
printf '::respawn:/usr/bin/python3 -I /run/hpclab/agent.py\n' > $R/etc/inittab
echo "hpclab-init: switching root"
exec switch_root $R /bin/busybox init
"""


@dataclass(frozen=True)
class KernelImage:
    version: str  # e.g. 6.1.0-56-amd64
    vmlinuz: Path
    initrd: Path
    modules: Path  # the full module tree, shared with the guests over 9p


@dataclass(frozen=True)
class Nic:
    tap: str  # host tap name (carries the run's prefix)
    mac: str
    bridge: str  # existing host bridge the tap joins
    ifname: str = "eth0"  # name inside the guest
    addresses: tuple[str, ...] = ()  # "10.250.0.1/24", configured by the guest init


@dataclass
class Vm:
    name: str
    hostname: str
    dir: Path
    pid: int
    starttime: int  # /proc/PID/stat field 22: tells a reused PID apart
    nics: list[Nic] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    @property
    def agent_sock(self) -> Path:
        return self.dir / "agent.sock"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"


# --- kernel and initramfs -------------------------------------------------


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, text=True, **kw)


def _kernel_package() -> str:
    """linux-image-6.1.0-<abi>-amd64, the one linux-image-amd64 points at now."""
    for attempt in range(2):
        out = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], text=True, capture_output=True).stdout
        for line in out.splitlines():
            dep = line.split(":", 1)[-1].strip()
            if line.strip().startswith("Depends:") and dep.startswith("linux-image-"):
                return dep
        if attempt == 0:  # no package lists yet: fetch them once
            print("hpclab: apt-get update (no linux-image-amd64 in the package lists)", flush=True)
            _run(["apt-get", "update", "-q"])
    raise RuntimeError("apt-cache knows no linux-image-amd64")


def _download(pkg: str, debdir: Path) -> Path:
    debs = sorted(debdir.glob(f"{pkg}_*.deb"))
    if debs:
        return debs[-1]
    debdir.mkdir(parents=True, exist_ok=True)
    print(f"hpclab: downloading {pkg} (~70 MB) into {debdir} ...", flush=True)
    t0 = time.monotonic()
    # apt's own lines pass through; the sandbox user could not write root's cache dir.
    apt = subprocess.Popen(["apt-get", "download", "-o", "APT::Sandbox::User=root", pkg], cwd=debdir)
    _show_progress(apt, debdir)
    if apt.returncode != 0:
        raise RuntimeError(f"apt-get download {pkg} failed (rc {apt.returncode})")
    deb = sorted(debdir.glob(f"{pkg}_*.deb"))[-1]
    print(f"hpclab: downloaded {deb.name} ({deb.stat().st_size >> 20} MB) in {time.monotonic() - t0:.1f} s", flush=True)
    return deb


def _show_progress(proc: subprocess.Popen, debdir: Path) -> None:
    """apt prints no progress when not on a terminal: report the growing file instead."""
    while proc.poll() is None:
        time.sleep(2)
        sizes = [p.stat().st_size for p in debdir.glob("*.deb*") if p.is_file()]
        if sizes:
            print(f"hpclab: ... {max(sizes) >> 20} MB", flush=True)


def _extract(deb: Path, version: str, root: Path) -> None:
    """dpkg-deb -x into a temp dir renamed into place, so a half extraction is never used."""
    if (root / "boot" / f"vmlinuz-{version}").exists():
        return
    print(f"hpclab: extracting {deb.name}", flush=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=".extract-"))
    try:
        _run(["dpkg-deb", "-x", str(deb), str(tmp)])
        _run(["depmod", "-b", str(tmp), version])
        try:
            tmp.rename(root)
        except OSError:
            if not root.exists():  # else a concurrent run extracted it first: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _module_closure(root: Path, version: str) -> list[Path]:
    """Files of MODULES and everything they depend on, relative to root."""
    out = _run(
        ["modprobe", "-d", str(root), "-S", version, "-a", "--show-depends", *MODULES], capture_output=True
    ).stdout
    files = {line.split()[1] for line in out.splitlines() if line.startswith("insmod ")}
    return sorted(Path(f).relative_to(root) for f in files)


def _init_script(modtree: Path) -> str:
    init = INIT.replace("@MODULES@", " ".join(MODULES)).replace("@MODTREE@", str(modtree))
    return init.replace("@CHECKOUT_CACHE@", CHECKOUT_CACHE)


def _stage_initramfs(stage: Path, root: Path, version: str, init: str) -> None:
    for d in ("bin", "dev", "proc", "sys", "lower", "rw", "newroot"):
        (stage / d).mkdir()
    shutil.copy2(BUSYBOX, stage / "bin/busybox")
    (stage / "bin/sh").symlink_to("busybox")
    for rel in _module_closure(root, version):
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, stage / rel)
    for meta in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        shutil.copy2(root / "lib/modules" / version / meta, stage / "lib/modules" / version / meta)
    # modules.dep of just these files, so the guest's modprobe resolves dependencies.
    _run(["depmod", "-b", str(stage), version])
    (stage / "init").write_text(init)
    (stage / "init").chmod(0o755)
    (stage / "agent.py").write_text(AGENT)


def _build_initramfs(root: Path, version: str, target: Path) -> None:
    init = _init_script(root / "lib/modules" / version)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".initrd-") as tmp:
        stage = Path(tmp) / "stage"
        stage.mkdir()
        _stage_initramfs(stage, root, version, init)
        files = subprocess.run(["find", "."], cwd=stage, capture_output=True, check=True).stdout
        cpio = subprocess.run(
            [str(BUSYBOX), "cpio", "-o", "-H", "newc"], cwd=stage, input=files, capture_output=True, check=True
        ).stdout
        part = Path(tmp) / "initrd.gz"
        part.write_bytes(subprocess.run(["gzip", "-9n"], input=cpio, capture_output=True, check=True).stdout)
        part.rename(target)


def _initrd_tag(root: Path, version: str) -> str:
    """Hash of everything that goes into the initramfs: a change rebuilds it."""
    h = hashlib.sha256()
    h.update(_init_script(root / "lib/modules" / version).encode())
    h.update(AGENT.encode())
    h.update(BUSYBOX.read_bytes())
    return h.hexdigest()[:12]


def prepare_kernel(cache: Path = CACHE) -> KernelImage:
    """Debian's kernel and a matching initramfs, cached outside the repo; idempotent."""
    pkg = _kernel_package()
    version = pkg.removeprefix("linux-image-")
    root = cache / version / "root"
    root.parent.mkdir(parents=True, exist_ok=True)
    _extract(_download(pkg, cache / "deb"), version, root)
    initrd = cache / version / f"initrd-{_initrd_tag(root, version)}.gz"
    if not initrd.exists():
        print(f"hpclab: building {initrd}", flush=True)
        _build_initramfs(root, version, initrd)
    return KernelImage(version, root / "boot" / f"vmlinuz-{version}", initrd, root / "lib/modules" / version)


# --- host-side objects ----------------------------------------------------


def random_mac() -> str:
    """A locally administered unicast MAC (52:54:00 is QEMU's, avoid clashing with it)."""
    return "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))


def _ip(*args: str) -> None:
    _run(["ip", *args], capture_output=True)


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _quiet_ipv6(dev: str) -> None:
    """No link-local address or router solicitations from lab links on the host."""
    Path(f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6").write_text("1\n")


def create_tap(run: Run, nic: Nic) -> None:
    run.record("tap", nic.tap, bridge=nic.bridge)
    _ip("tuntap", "add", "dev", nic.tap, "mode", "tap")
    _quiet_ipv6(nic.tap)
    _ip("link", "set", nic.tap, "master", nic.bridge, "up")


def delete_link(name: str) -> None:
    if _link_exists(name):
        _ip("link", "del", name)


def _kernel_cmdline(hostname: str, nics: list[Nic], gateway: str | None, checkout: Path | None = REPO) -> str:
    args = ["console=ttyS0", "panic=-1", "quiet", "loglevel=4", f"hpclab.hostname={hostname}"]
    args += ["hpclab.if=" + ",".join((n.ifname, n.mac.lower(), *n.addresses)) for n in nics]
    if gateway:
        args.append(f"hpclab.gw={gateway}")
    if checkout:
        if any(c.isspace() for c in str(checkout)):
            raise ValueError(f"a blank in the checkout's path: no way onto the VMs' kernel command line: {checkout}")
        args.append(f"hpclab.checkout={checkout}")
    return " ".join(args)


def _qemu_argv(kernel: KernelImage, vmdir: Path, nics: list[Nic], cmdline: str, memory_mb: int,
               checkout: Path | None = REPO) -> list[str]:
    argv = [
        QEMU, "-machine", "q35", "-accel", f"tcg,tb-size={TB_MB}", "-cpu", DIRECTOR_CPU, "-smp", "1",
        "-m", f"{memory_mb}M",
        "-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
        "-serial", f"file:{vmdir / 'console.log'}", "-pidfile", str(vmdir / "qemu.pid"),
        "-kernel", str(kernel.vmlinuz), "-initrd", str(kernel.initrd), "-append", cmdline,
        "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        "-device", "virtio-rng-pci",
        "-device", "virtio-serial-pci",
        "-chardev", f"socket,path={vmdir / 'agent.sock'},server=on,wait=off,id=agent",
        "-device", f"virtserialport,chardev=agent,name={AGENT_PORT}",
    ]  # fmt: skip
    if checkout:  # QEMU's option syntax doubles a comma in a value
        path = str(checkout).replace(",", ",,")
        argv += ["-virtfs", f"local,path={path},mount_tag=checkout,security_model=none,readonly=on,multidevs=remap"]
    for i, nic in enumerate(nics):
        argv += ["-netdev", f"tap,id=n{i},ifname={nic.tap},script=no,downscript=no"]
        argv += ["-device", f"virtio-net-pci,netdev=n{i},mac={nic.mac}"]
    return argv


def _starttime(pid: int) -> int:
    """Field 22 of /proc/PID/stat (after the parenthesised comm, which may hold spaces)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[19])


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_vm(
    run: Run,
    name: str,
    nics: list[Nic],
    hostname: str | None = None,
    gateway: str | None = None,
    memory_mb: int = MEMORY_MB,
    kernel: KernelImage | None = None,
    checkout: Path | None = REPO,
) -> Vm:
    """Boot a director. Taps, the VM dir and the QEMU process are recorded in run first.
    ``checkout``: the directory shared live at its own path (None: none)."""
    kernel = kernel or prepare_kernel()
    vmdir = run.dir / f"vm-{name}"
    run.record("dir", str(vmdir))
    vmdir.mkdir(parents=True, exist_ok=True)
    for nic in nics:
        create_tap(run, nic)
    cmdline = _kernel_cmdline(hostname or name, nics, gateway, checkout)
    argv = _qemu_argv(kernel, vmdir, nics, cmdline, memory_mb, checkout)
    proc, start = _launch(run, name, vmdir, argv)
    return Vm(name, hostname or name, vmdir, proc.pid, start, list(nics), proc)


def _launch(run: Run, name: str, vmdir: Path, argv: list[str]) -> tuple[subprocess.Popen, int]:
    """QEMU started and recorded in ``run``: (its process, its start time)."""
    label = f"{run.prefix}-qemu-{name}"
    argv = [*argv, "-name", f"{label},process={label}"]  # so ps shows whose VM this is
    (vmdir / "cmdline").write_text(json.dumps(argv) + "\n")
    # The PID is not known before the fork: record the pidfile first, then the PID.
    run.record("process", label, pidfile=str(vmdir / "qemu.pid"))
    with (vmdir / "qemu.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    start = _starttime(proc.pid)
    run.record("process", label, pid=proc.pid, starttime=start, vmdir=str(vmdir))
    return proc, start


def _pxe_argv(vmdir: Path, nic: Nic, memory_mb: int) -> list[str]:
    """A diskless machine: no disk, no kernel of ours, no shared directory, no agent. SeaBIOS runs
    the NIC's option ROM, which for QEMU's virtio-net is iPXE (Debian's ipxe-qemu): it asks DHCP
    and boots what the boot server says, as a real node's firmware does."""
    return [
        QEMU, "-machine", "q35", "-accel", f"tcg,tb-size={TB_MB}", "-cpu", PXE_CPU, "-smp", "1", "-m", f"{memory_mb}M",
        "-display", "none", "-monitor", "none", "-nodefaults", "-boot", "order=n",
        "-serial", f"file:{vmdir / 'console.log'}", "-pidfile", str(vmdir / "qemu.pid"),
        # SeaBIOS's serial console (no VGA here): the firmware's and iPXE's screen text goes to
        # the serial port too, so the console log shows the boot from its first line. The port
        # is read as a little-endian integer of the file's size (romfile_loadint).
        "-fw_cfg", f"name=etc/sercon-port,file={vmdir / 'sercon-port'}",
        "-device", "virtio-rng-pci",
        "-netdev", f"tap,id=n0,ifname={nic.tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=n0,mac={nic.mac}",
    ]  # fmt: skip


def start_pxe_vm(run: Run, name: str, nic: Nic, memory_mb: int = 1024) -> Vm:
    """Power on a diskless machine with ``nic`` (its MAC: the inventory's, or an unknown one).
    A reboot is a reboot (no ``-no-reboot``): the node boots from the network again. The tap,
    the VM dir and the QEMU process are recorded in ``run`` first, as for a director."""
    vmdir = run.dir / f"vm-{name}"
    run.record("dir", str(vmdir))
    vmdir.mkdir(parents=True, exist_ok=True)
    (vmdir / "sercon-port").write_bytes((0x3F8).to_bytes(2, "little"))  # COM1
    create_tap(run, nic)
    proc, start = _launch(run, name, vmdir, _pxe_argv(vmdir, nic, memory_mb))
    return Vm(name, name, vmdir, proc.pid, start, [nic], proc)


# --- the guest agent, host side -------------------------------------------


def _request(vm: Vm, req: dict, timeout: float) -> dict:
    """One request over a fresh connection; replies to older requests are skipped by id."""
    req = {"id": secrets.token_hex(8), **req}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(vm.agent_sock))
        sock.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"agent of {vm.name} closed the connection")
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                rep = json.loads(line)
                if rep.get("id") == req["id"]:
                    return rep


def vm_exec(vm: Vm, argv: list[str], timeout: float = 60, stdin: str = "") -> tuple[int, str, str]:
    """Run argv in the guest, wait at most timeout seconds; (rc, stdout, stderr)."""
    rep = _request(vm, {"argv": list(argv), "timeout": timeout, "stdin": stdin}, timeout + 10)
    if rep.get("timed_out"):
        raise TimeoutError(f"{argv} timed out after {timeout} s in {vm.name}")
    return rep["rc"], rep["out"], rep["err"]


def vm_spawn(vm: Vm, argv: list[str], log: str = "/dev/null") -> int:
    """Start a long-running foreground program in the guest (its own session); its guest PID."""
    rep = _request(vm, {"argv": list(argv), "detach": True, "log": log}, 30)
    if rep["rc"] != 0:
        raise RuntimeError(f"cannot start {argv} in {vm.name}: {rep['err']}")
    return rep["pid"]


def alive(vm: Vm) -> bool:
    if vm.proc is not None:
        return vm.proc.poll() is None
    return _pid_matches(vm.pid, vm.starttime)


def _console_tail(vm: Vm, lines: int = 20) -> str:
    try:
        return "\n".join(vm.console_log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_ready(vm: Vm, timeout: float = 120) -> float:
    """Wait until the guest agent answers; seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not alive(vm):
            raise RuntimeError(f"VM {vm.name} exited during boot; console:\n{_console_tail(vm)}")
        try:
            if _request(vm, {"op": "ping"}, 2)["rc"] == 0:
                return time.monotonic() - t0
        except (OSError, ValueError):  # socket not there yet, or agent not up yet
            time.sleep(0.2)
    raise TimeoutError(f"VM {vm.name} not ready after {timeout} s; console:\n{_console_tail(vm)}")


# --- stopping and teardown ------------------------------------------------


def _pid_matches(pid: int, starttime: int | None) -> bool:
    """The PID still names a live process we started (not a reused PID, not a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z" and (starttime is None or int(fields[19]) == starttime)


def kill_pid(pid: int, starttime: int | None = None, grace: float = 5) -> None:
    """SIGTERM, then SIGKILL after grace seconds; only while the PID is still ours."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        if not _pid_matches(pid, starttime):
            break
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _pid_matches(pid, starttime):
            time.sleep(0.05)
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect our own child's exit status so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: its parent reaps it


def stop_vm(vm: Vm) -> None:
    """Kill the QEMU process by its recorded PID and remove the VM's taps."""
    kill_pid(vm.pid, vm.starttime)
    if vm.proc is not None:
        vm.proc.wait(timeout=5)
    for nic in vm.nics:
        delete_link(nic.tap)


def _kill_from_pidfile(pidfile: str) -> None:
    """For a process recorded before its PID was known: trust the PID only if its
    command line names this very pidfile (QEMU's does: ``-pidfile PATH``)."""
    try:
        pid = int(Path(pidfile).read_text().split()[0])
        start = _starttime(pid)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return
    if pidfile.encode() in cmdline:
        kill_pid(pid, start)


def _undo(run: Run, rec: Record) -> None:
    if rec.kind == "process" and rec.pid:
        kill_pid(rec.pid, rec.extra.get("starttime"))
    elif rec.kind == "process" and "pidfile" in rec.extra:
        _kill_from_pidfile(rec.extra["pidfile"])
    elif rec.kind in ("tap", "bridge", "link"):
        delete_link(rec.name)
    elif rec.kind == "netns":
        subprocess.run(["ip", "netns", "del", rec.name], capture_output=True)
    elif rec.kind == "dir" and Path(rec.name).resolve().is_relative_to(run.dir.resolve()):
        # Only ever inside the run's dir: a corrupt registry must not rm -rf elsewhere.
        shutil.rmtree(rec.name, ignore_errors=True)


def teardown(run: Run) -> list[str]:
    """Undo every record of run in reverse order, then remove the run's dir; errors as text."""
    errors = []
    for rec in reversed(run.records()):
        try:
            _undo(run, rec)
        except (OSError, subprocess.SubprocessError) as exc:
            errors.append(f"{rec.kind} {rec.name}: {exc}")
    shutil.rmtree(run.dir, ignore_errors=True)
    return errors
