"""Image builds (hpc_image_build) with the real runner (overlayfs, chroot, mksquashfs; root only)
and the fake one, under one suite. The real runner's base here is a busybox root instead of
mmdebstrap (no network in tests): everything after the base runs for real. mmdebstrap itself is
exercised by ``make bench-image`` and the boot lab.

Scripts in this suite write through ``${ROOT:-}``: unset in the real chroot, the fake's upper
dir in the fake (which has no chroot)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import hpc_image
import hpc_image_build as build
from hpc_image_build import BuildError, Store
from hpc_schema import Image

BUILTIN = {
    "base": {"10_mark": b"#!/bin/sh\necho base > ${ROOT:-}/etc/base-mark\n"},
    "install": {"10_hostname": b"#!/bin/sh\necho node > ${ROOT:-}/etc/hostname\n"},
    "packages": {},
    "post-install": {"10_motd": b"#!/bin/sh\necho built > ${ROOT:-}/etc/motd\n",
                     "20_hostname": b"#!/bin/sh\necho node-final > ${ROOT:-}/etc/hostname\n"},
    "configure": {"10_fstab": b"#!/bin/sh\necho 'home /home nfs' > ${ROOT:-}/etc/fstab\n"},
}
BASE = {"suite": "bookworm", "variant": "minbase"}


def _busybox_root(dest: Path) -> Path:
    """A root a chroot can run /bin/sh in: a static busybox and its applets."""
    for sub in ("bin", "etc", "proc", "sys", "dev", "run", "tmp", "usr/sbin", "root"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", dest / "bin/busybox")
    for applet in ("sh", "echo", "cat", "rm", "false", "ls"):
        (dest / "bin" / applet).symlink_to("busybox")
    (dest / "etc/os-release").write_text("ID=busybox\n")
    return dest


class TreeRunner(build.NativeRunner):
    """The real runner with a busybox tree for a base."""

    def __init__(self, workdir: Path, tree: Path) -> None:
        super().__init__(workdir, squashfs_args=("-comp", "zstd"))
        self.tree = tree

    def bootstrap(self, dest, base, log):
        shutil.copytree(self.tree, dest, dirs_exist_ok=True, symlinks=True)


def _native_ok() -> str | None:
    if os.geteuid() != 0:
        return "needs root (overlayfs, chroot)"
    if not Path("/bin/busybox").exists() or not shutil.which("mksquashfs"):
        return "needs busybox-static and squashfs-tools"
    return None


@pytest.fixture(params=["fake", "native"])
def env(request, tmp_path):
    tree = _busybox_root(tmp_path / "busybox")
    if request.param == "native":
        if reason := _native_ok():
            pytest.skip(reason)
        runner = TreeRunner(tmp_path / "work", tree)
    else:
        runner = build.FakeRunner(tree)
    return Env(Store(tmp_path / "store"), runner, request.param)


class Env:
    def __init__(self, store: Store, runner, kind: str) -> None:
        self.store, self.runner, self.kind, self.log = store, runner, kind, []

    def plan(self, site=None, files=None):
        site = site or {}
        bodies = {"builtin": BUILTIN, "site": site}
        plan, self.bodies = build.plan_build("compute", BASE, {}, bodies, self.store, {}, files)
        return plan

    def build(self, site=None, keep=3, in_use=(), files=None):
        plan = self.plan(site, files)
        steps = build.changes(plan, self.store, keep, in_use)
        b = build.Build(plan, self.store, self.runner, BASE, self.bodies, log=self.log.append, files=files or {})
        return plan, steps, b.apply(steps)

    def files(self, version: str) -> dict[str, str]:
        """The packed root's text files (the fake's pack format, or the real squashfs unpacked)."""
        packed = self.store.version("compute", version) / "root.squashfs"
        if self.kind == "fake":
            return {k: v for k, v in json.loads(packed.read_text()).items() if not k.endswith("busybox")}
        dest = self.store.root / "unpacked"
        shutil.rmtree(dest, ignore_errors=True)
        subprocess.run(["unsquashfs", "-q", "-n", "-d", str(dest), str(packed)], check=True, capture_output=True)
        out = {str(p.relative_to(dest)): p.read_text() for p in dest.rglob("*")
               if p.is_file() and not p.is_symlink() and p.name != "busybox"}
        shutil.rmtree(dest)
        return out


def test_a_cold_build_runs_every_phase_and_packs_a_version_with_a_manifest(env):
    plan, steps, done = env.build()
    assert [s.kind for s in steps] == ["phase"] * 5 + ["version"]
    assert env.store.versions("compute") == [plan.version]
    files = env.files(plan.version)
    # A later phase's file wins over an earlier one's (the layers' order).
    assert files["etc/hostname"] == "node-final\n" and files["etc/motd"] == "built\n"
    assert files["etc/fstab"] == "home /home nfs\n" and files["etc/base-mark"] == "base\n"
    manifest = (env.store.version("compute", plan.version) / "manifest").read_text()
    assert manifest.endswith("  root.squashfs\n")
    # Scratch of the build never lands in the image.
    assert not any(k.startswith(("run/", "tmp/")) for k in files)
    assert "usr/sbin/policy-rc.d" not in files


def test_a_second_build_of_the_same_inputs_changes_nothing(env):
    env.build()
    plan, steps, done = env.build()
    assert steps == [] and done == []


def test_a_configure_only_change_runs_configure_alone_and_keeps_the_old_version(env):
    first, _, _ = env.build()
    nfs4 = b"#!/bin/sh\necho 'home /home nfs4' > ${ROOT:-}/etc/fstab\n"
    plan, steps, _ = env.build(site={"configure": {"10_fstab": nfs4}})
    assert [(s.kind, s.key) for s in steps] == [("phase", "compute configure"), ("version", plan.version)]
    assert env.store.versions("compute") == [first.version, plan.version]
    assert env.files(plan.version)["etc/fstab"] == "home /home nfs4\n"
    assert env.files(plan.version)["etc/motd"] == "built\n"  # from the cached post-install layer
    assert env.files(first.version)["etc/fstab"] == "home /home nfs\n"


def test_files_the_builder_copies_into_configure_are_in_the_image_and_in_its_key(env, tmp_path):
    """The master's Salt modules, seeded into ``configure`` (diskless.build): there before its
    scripts run, without the builder's bytecode; a change to them rebuilds configure alone."""
    modules = tmp_path / "extmods"
    (modules / "modules/__pycache__").mkdir(parents=True)
    (modules / "modules/hpc.py").write_text("V = 1\n")
    (modules / "modules/__pycache__/hpc.cpython-311.pyc").write_bytes(b"builder's")
    seen = {"configure": {"30_seen": b"#!/bin/sh\ncat ${ROOT:-}/var/cache/x/modules/hpc.py > ${ROOT:-}/etc/seen\n"}}
    files = {"configure": {"var/cache/x": modules}}
    first, _, _ = env.build(site=seen, files=files)
    image = env.files(first.version)
    assert image["var/cache/x/modules/hpc.py"] == "V = 1\n" and image["etc/seen"] == "V = 1\n"
    assert not [k for k in image if "__pycache__" in k]
    (modules / "modules/hpc.py").write_text("V = 2\n")
    plan, steps, _ = env.build(site=seen, files=files)
    assert [(s.kind, s.key) for s in steps] == [("phase", "compute configure"), ("version", plan.version)]
    assert env.files(plan.version)["etc/seen"] == "V = 2\n"
    (modules / "modules/__pycache__/hpc.cpython-311.pyc").write_bytes(b"recompiled")
    assert env.build(site=seen, files=files)[1] == []  # the builder's bytecode is no input


def test_a_failed_script_is_named_with_its_output_and_the_version_in_service_is_untouched(env):
    first, _, _ = env.build()
    broken = {"configure": {"20_broken": b"#!/bin/sh\necho 'cannot reach the NFS server' >&2\nexit 3\n"}}
    with pytest.raises(BuildError) as err:
        env.build(site=broken)
    assert (err.value.phase, err.value.script) == ("configure", "20_broken")
    assert "cannot reach the NFS server" in err.value.output and "configure/20_broken" in str(err.value)
    assert env.store.versions("compute") == [first.version]
    assert env.store.cached("compute") == {p.key for p in first.phases}
    leftovers = [p.name for p in env.store.root.rglob("*") if p.name.startswith(build.TMP)]
    assert leftovers == []
    if env.kind == "native":
        mounts = Path("/proc/self/mountinfo").read_text()
        assert "hpcnet-image" not in mounts and "hpcnet-run" not in mounts


def test_old_versions_are_pruned_but_never_one_in_use(env):
    builds = [env.build(site={"configure": {"10_fstab": f"#!/bin/sh\necho {i} > ${{ROOT:-}}/etc/fstab\n".encode()}},
                        keep=2, in_use=())[0].version for i in range(2)]
    plan, steps, _ = env.build(site={"configure": {"10_fstab": b"#!/bin/sh\necho 2 > ${ROOT:-}/etc/fstab\n"}},
                               keep=2, in_use=[builds[0]])
    assert [s.op for s in steps if s.kind == "version"] == ["add"]  # builds[0] is pinned: kept
    assert env.store.versions("compute") == [*builds, plan.version]
    _, steps, _ = env.build(site={"configure": {"10_fstab": b"#!/bin/sh\necho 3 > ${ROOT:-}/etc/fstab\n"}},
                            keep=2, in_use=[])
    assert [(s.op, s.key) for s in steps if s.kind == "version"][1:] == [("delete", builds[0]), ("delete", builds[1])]
    assert len(env.store.versions("compute")) == 2


def test_rebuilding_an_older_version_makes_it_the_newest_without_repacking(env):
    first, _, _ = env.build()
    env.build(site={"configure": {"10_fstab": b"#!/bin/sh\necho other > ${ROOT:-}/etc/fstab\n"}})
    packed = env.store.version("compute", first.version) / "root.squashfs"
    mtime = packed.stat().st_mtime_ns
    plan, steps, _ = env.build()
    assert [(s.op, s.kind) for s in steps] == [("update", "version")]
    assert env.store.versions("compute")[-1] == first.version and packed.stat().st_mtime_ns == mtime


def test_a_change_to_the_files_the_base_gets_rebuilds_from_the_base(tmp_path):
    """The initramfs's boot script is copied in before the kernel's package makes the initrd: a
    change to it must rebuild the base (a cached base would keep the old initrd)."""
    image = hpc_image_build_image()
    files = tmp_path / "base" / "etc/initramfs-tools/scripts"
    files.mkdir(parents=True)
    (files / "hpcnet").write_text("mountroot() { :; }\n")
    first, _, _ = build.inputs(image, "http://deb.debian.org/debian", build.BOOT_PACKAGES, tmp_path / "none",
                               tmp_path / "none", tmp_path / "base")
    (files / "hpcnet").write_text("mountroot() { panic; }\n")
    second, _, _ = build.inputs(image, "http://deb.debian.org/debian", build.BOOT_PACKAGES, tmp_path / "none",
                                tmp_path / "none", tmp_path / "base")
    assert first["files"] != second["files"] and first["include"] == second["include"]
    assert "linux-image-amd64" in first["include"] and "openssh-server" in first["include"]


def hpc_image_build_image():
    from hpc_schema import Image
    return Image(name="compute", packages=["openssh-server"], modules={"nfs": ["nfs-common"]})


def test_a_build_shows_each_phase_as_it_starts_and_loses_no_line(env):
    """What ``salt-run diskless.build`` shows: the lines reach the master in batches, a new batch
    at each phase's start (the clock never moves here, so only those), none lost at the end."""
    batches: list[list[str]] = []
    progress = build.Progress("compute", batches.append, env.log.append, every=1.0, clock=lambda: 0.0)
    plan = env.plan()
    steps = build.changes(plan, env.store, 3, ())
    try:
        build.Build(plan, env.store, env.runner, BASE, env.bodies, log=progress).apply(steps)
    finally:
        progress.flush()
    starts = [b[-1] for b in batches if b[-1].startswith("compute: phase ")]
    assert [line.split()[2].rstrip(":") for line in starts] == list(hpc_image.PHASES)
    assert [line for b in batches for line in b] == env.log  # every line, in order, once
    assert batches[-1][-1] == f"compute: version {plan.version} is the newest"


def test_progress_goes_a_seconds_worth_at_a_time():
    now = [0.0]
    batches: list[list[str]] = []
    progress = build.Progress("compute", batches.append, lambda line: None, every=1.0, clock=lambda: now[0])
    for i in range(10):
        now[0] = i * 0.25
        progress(f"line {i}")
    assert [len(b) for b in batches] == [5, 4]  # at 1.0 s (lines 0-4) and at 2.0 s (5-8)
    progress.flush()
    assert [len(b) for b in batches] == [5, 4, 1]


def test_the_scripts_download_with_the_build_hosts_trust_store_which_stays_out_of_the_image(tmp_path):
    """A site whose proxy re-signs TLS has its CA in the build host's store: pip in a phase script
    (Salt from PyPI) must trust what the host trusts, and the store must not land in the image."""
    host_store = Path("/etc/ssl/certs/ca-certificates.crt")
    if reason := _native_ok() or (None if host_store.is_file() else "no CA store on this host"):
        pytest.skip(reason)
    env = Env(Store(tmp_path / "store"), TreeRunner(tmp_path / "work", _busybox_root(tmp_path / "busybox")), "native")
    site = {"post-install": {"30_pip": b'#!/bin/sh\ncat "$PIP_CERT" > /etc/seen-ca\n'}}
    plan, _, _ = env.build(site)
    files = env.files(plan.version)
    assert files["etc/seen-ca"] == host_store.read_text()
    assert not any(k.startswith("run/") for k in files)


def test_an_image_the_pillar_does_not_declare_is_named_with_those_it_does():
    images = [Image(name="compute"), Image(name="gpu")]
    assert build.image_named(images, "gpu") is images[1]
    with pytest.raises(ValueError) as err:
        build.image_named(images, "login")
    assert str(err.value) == "diskless.images: no image named 'login' (declared: compute, gpu)"
