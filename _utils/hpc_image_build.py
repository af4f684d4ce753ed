"""Run an image build plan (hpc_image) on the boot server: the store of phase layers and versions,
and the runner that fills them (issue 12, step 1).

The store (``diskless.store``, default /srv/hpcnet)::

    images/<image>/<version>/       vmlinuz, initrd.img, root.squashfs, manifest: what the HTTP
                                    server serves (hpc_bootmenu.IMAGES_PATH)
    images/<image>/versions.json    the versions, oldest first (what pruning and the menus read)
    layers/<image>/<phase key>/     what each phase changed (its overlay upper dir; base: a rootfs)

Phases are stacked with overlayfs, not copied: a phase runs in a chroot whose root is the layers
before it (read-only) under a fresh upper dir, and that upper dir becomes its layer. A cached
phase is a directory that exists, and snapshotting one costs nothing (a copy of a 300 MB root
per phase would cost seconds each). Every mount of a phase lives in a private mount namespace of
the one process that runs it (``unshare --mount``), so a failed or killed build leaves no mount.

Nothing becomes visible half-done: a phase and a version are written under ``.tmp-`` names and
renamed when complete; a failed script stops the build, is named with its output, and leaves the
versions (the one nodes boot included) untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import hpc_image
from hpc_change import Change
from hpc_image import PHASES, BuildPlan, Phase, prune
from hpc_schema import Image

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

STORE = "/srv/hpcnet"
TMP = ".tmp-"
ARTIFACTS = ("vmlinuz", "initrd.img", "root.squashfs")  # what a version serves, in manifest order
# By phase: the trees the builder copies into it (a path in the image -> a directory here).
PhaseFiles = Mapping[str, Mapping[str, Path]]
# What every image needs to boot diskless, whatever the pillar lists: a kernel, the initramfs the
# boot script lives in, busybox for its wget and sha256sum, an init (minbase has none), and
# Python with venv for the salt-minion (post-install/50_salt-minion: Salt from PyPI).
BOOT_PACKAGES = ("linux-image-amd64", "initramfs-tools", "busybox", "systemd-sysv", "python3", "python3-venv")
# What a node's minion needs to run this project's modules, at the versions the boot server's own
# Salt runs with (docs/install.md pins them in requirements.txt): Salt, and our modules' imports.
NODE_PYTHON_PACKAGES = ("salt", "netaddr", "pydantic", "pyroute2", "ClusterShell")
# Salt's dependencies a node does without: timelib is published as source only, so installing it
# took a compiler in the image (an apt-get update, gcc and python3-dev, purged again: 34 of a cold
# build's 64 s of post-install). Salt imports it only if it is there; without it Salt's
# `strftime` Jinja filter and user.present's `expire` take timestamps, not date strings
# (docs/diskless.md: a site script puts it back).
NODE_SKIPPED = frozenset({"timelib"})
MARK = "@@hpcnet "  # the phase driver's own lines in its output, between the scripts' lines


class BuildError(RuntimeError):
    """A phase that failed: ``script`` (None when the phase's setup failed) and its ``output``."""

    def __init__(self, image: str, phase: str, script: str | None, output: str) -> None:
        self.image, self.phase, self.script, self.output = image, phase, script, output
        what = f"script {phase}/{script}" if script else f"phase {phase}"
        super().__init__(f"image {image}: {what} failed; the versions in service are untouched. "
                         f"Its output (last lines):\n{tail(output)}")


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


# ---------------------------------------------------------------- the store


@dataclass(frozen=True)
class Store:
    root: Path

    def image(self, image: str) -> Path:
        return self.root / "images" / image

    def layers(self, image: str) -> Path:
        return self.root / "layers" / image

    def layer(self, image: str, key: str) -> Path:
        return self.layers(image) / key

    def version(self, image: str, version: str) -> Path:
        return self.image(image) / version

    def cached(self, image: str) -> set[str]:
        layers = self.layers(image)
        return {p.name for p in layers.iterdir() if not p.name.startswith(TMP)} if layers.is_dir() else set()

    def versions(self, image: str) -> list[str]:
        """Built versions, oldest first; one whose directory is gone is not listed."""
        try:
            listed = json.loads((self.image(image) / "versions.json").read_text())
        except FileNotFoundError:
            return []
        return [v for v in listed if self.version(image, v).is_dir()]

    def record(self, image: str, versions: Sequence[str]) -> None:
        write_atomic(self.image(image) / "versions.json", json.dumps(list(versions), indent=1) + "\n")

    def clear_tmp(self, image: str) -> None:
        """What an interrupted build left: never a layer nor a version (those are renamed whole)."""
        for parent in (self.layers(image), self.image(image)):
            if parent.is_dir():
                for p in parent.iterdir():
                    if p.name.startswith(TMP):
                        shutil.rmtree(p)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(TMP + path.name)
    tmp.write_text(text)
    tmp.chmod(mode)
    os.replace(tmp, path)


# ---------------------------------------------------------------- a build's inputs


def read_scripts(root: Path) -> dict[str, dict[str, bytes]]:
    """``root/<phase>/<script>`` for each phase (a missing directory: no scripts). Names starting
    with a dot or ending in ``~`` (editors' leftovers) are not scripts."""
    out: dict[str, dict[str, bytes]] = {}
    for phase in PHASES:
        pdir = root / phase
        if pdir.is_dir():
            out[phase] = {p.name: p.read_bytes() for p in sorted(pdir.iterdir())
                          if p.is_file() and not p.name.startswith(".") and not p.name.endswith("~")}
    return out


def tree_files(root: Path) -> list[Path]:
    """The files under ``root`` a copy of it takes: Python's bytecode caches left out (the image
    compiles its own, with its own interpreter)."""
    if not root.is_dir():
        return []
    return [p for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.relative_to(root).parts]


def tree_digest(root: Path) -> list[list[str]]:
    """Each file under ``root``: its path, mode and sha256 (what a copy of the tree depends on)."""
    return [[str(p.relative_to(root)), oct(p.stat().st_mode & 0o7777), hashlib.sha256(p.read_bytes()).hexdigest()]
            for p in tree_files(root)]


def copy_tree(src: Path, dest: Path) -> None:
    """``tree_files(src)`` into ``dest``, with their modes and times."""
    for path in tree_files(src):
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def inputs(image: Image, mirror: str, boot_packages: Sequence[str], builtin: Path, site: Path,
           base_files: Path | None = None,
           ) -> tuple[dict[str, object], dict[str, list[str]], dict[str, dict[str, dict[str, bytes]]]]:
    """What ``hpc_image.plan`` hashes for ``image``: the base (suite, mirror, variant, every
    package: mmdebstrap installs them all in one pass, faster than a second apt run in the
    packages phase, which runs the modules' scripts; and ``base_files``, copied in before the
    packages: the initramfs's boot script must be there when the kernel's initrd is made), the
    packages per module, and the scripts: built-in and the site's (seed 002: a site script
    replaces the built-in of its name)."""
    packages = {"boot": sorted(boot_packages), "image": sorted(image.packages),
                **{m: sorted(p) for m, p in image.modules.items()}}
    everything = sorted({p for names in packages.values() for p in names})
    base = {"suite": image.suite, "mirror": mirror, "variant": "minbase", "include": everything,
            "files": tree_digest(base_files) if base_files else []}
    return base, packages, {"builtin": read_scripts(builtin), "site": read_scripts(site)}


def plan_build(image: str, base: Mapping[str, object], packages: Mapping[str, Sequence[str]],
               bodies: Mapping[str, Mapping[str, Mapping[str, bytes]]], store: Store,
               env: Mapping[str, str], files: PhaseFiles | None = None,
               ) -> tuple[BuildPlan, dict[str, dict[str, bytes]]]:
    """The plan of ``image`` from ``inputs()``'s parts, and each phase's script bodies as that plan
    runs them (the site's replacing the built-ins of the same name: the one merge rule).
    ``files``: the trees copied into a phase (``Build.files``), hashed into its key."""
    scripts = {p: hpc_image.scripts(p, bodies["builtin"].get(p, {}), bodies["site"].get(p, {})) for p in PHASES}
    digests = {phase: {dest: tree_digest(src) for dest, src in sorted(trees.items())}
               for phase, trees in (files or {}).items()}
    plan = hpc_image.plan(image, base, packages, scripts, store.cached(image), env, digests)
    merged = {p: {**bodies["builtin"].get(p, {}), **bodies["site"].get(p, {})} for p in PHASES}
    return plan, merged


def image_named(images: Sequence[Image], name: str) -> Image:
    """The pillar's image called ``name``, or an error naming the key and what is declared."""
    for image in images:
        if image.name == name:
            return image
    declared = ", ".join(i.name for i in images) or "none"
    raise ValueError(f"diskless.images: no image named {name!r} (declared: {declared})")


def prepare(image: Image, mirror: str, store: Store, builtin: Path, site: Path, env: Mapping[str, str],
            in_use: Iterable[str] = (), log: Callable[[str], None] = print, files: PhaseFiles | None = None,
            ) -> tuple[BuildPlan, list[Change], Build]:
    """One build of ``image``, ready to run: its plan, what it changes (``changes()``) and the
    ``Build`` that applies them. ``builtin`` holds the built-in ``phases/`` and ``base/`` files;
    the boot server's ``diskless.build`` and the lab's ``lab image`` both start here, so their
    phase keys agree."""
    base, packages, bodies = inputs(image, mirror, BOOT_PACKAGES, builtin / "phases", site, builtin / "base")
    plan, merged = plan_build(image.name, base, packages, bodies, store, env, files)
    steps = changes(plan, store, image.keep, in_use)
    runner = NativeRunner(store.root / "work", base_files=builtin / "base")
    return plan, steps, Build(plan, store, runner, base, merged, env, log=log, files=files or {})


# ---------------------------------------------------------------- what a run changes


def changes(plan: BuildPlan, store: Store, keep: int, in_use: Iterable[str]) -> list[Change]:
    """The build as the shared plan shape: the phases to run, the version to pack (or to make the
    newest again, when the same inputs were built before), the old versions to prune."""
    image, out = plan.image, []
    for phase in plan.to_run():
        out.append(Change("add", "phase", f"{image} {phase.name}", new=phase.key,
                          summary=f"{image}: phase {phase.name} ({len(phase.scripts)} scripts)"))
    built = store.versions(image)
    if not built or built[-1] != plan.version:
        op = "update" if plan.version in built else "add"
        out.append(Change(op, "version", plan.version, new=plan.version,
                          summary=f"{plan.version} ({'newest again' if op == 'update' else 'packed'})"))
    after = [v for v in built if v != plan.version] + [plan.version]
    for old in prune(after, keep, [*in_use, plan.version]):
        out.append(Change("delete", "version", old, old=old, summary=f"{old} (pruned: keep {keep})"))
    return out


# ---------------------------------------------------------------- the runner


class Runner(Protocol):
    """What the build does to the disk: ``NativeRunner`` (mmdebstrap, overlayfs, chroot,
    mksquashfs) and ``FakeRunner`` (plain copies) pass the same suite."""

    def bootstrap(self, dest: Path, base: Mapping[str, object], log: Callable[[str], None]) -> None: ...

    def run_phase(self, lower: Sequence[Path], upper: Path, scripts: Mapping[str, bytes],
                  env: Mapping[str, str], log: Callable[[str], None]) -> None: ...

    def pack(self, layers: Sequence[Path], dest: Path, log: Callable[[str], None]) -> None: ...


@dataclass
class Build:
    """One build of ``plan`` into ``store``: ``scripts`` holds each phase's script bodies by name
    (what ``plan`` hashed), ``env`` what every script sees."""

    plan: BuildPlan
    store: Store
    runner: Runner
    base: Mapping[str, object]
    scripts: Mapping[str, Mapping[str, bytes]]
    env: Mapping[str, str] = field(default_factory=dict)
    log: Callable[[str], None] = lambda line: None
    files: PhaseFiles = field(default_factory=dict)  # copied into a phase before its scripts run

    def apply(self, steps: Sequence[Change]) -> list[str]:
        """Carry out ``changes()``; returns the steps done, in words. A failure raises BuildError
        after removing what the failed step had started."""
        image = self.plan.image
        self.store.clear_tmp(image)
        done = []
        for step in steps:
            if step.kind == "phase":
                self._phase(next(p for p in self.plan.phases if p.key == step.new))
            elif step.op == "delete":
                shutil.rmtree(self.store.version(image, step.old))
                self.store.record(image, [v for v in self.store.versions(image) if v != step.old])
            else:
                self._version(step.op == "update")
            done.append(step.describe())
        return done

    def _layers(self, upto: Phase) -> list[Path]:
        """The layers under ``upto``, top first (overlayfs's lowerdir order)."""
        index = self.plan.phases.index(upto)
        return [self.store.layer(self.plan.image, p.key) for p in reversed(self.plan.phases[:index])]

    def _phase(self, phase: Phase) -> None:
        image = self.plan.image
        final = self.store.layer(image, phase.key)
        tmp = final.with_name(TMP + phase.key)
        tmp.mkdir(parents=True)
        self.log(f"{image}: phase {phase.name}: {', '.join(s.name for s in phase.scripts) or 'no scripts'}")
        try:
            if phase.name == "base":
                self.runner.bootstrap(tmp, self.base, self.log)
            for dest, src in sorted(self.files.get(phase.name, {}).items()):
                copy_tree(src, tmp / dest)  # the phase's upper layer: its scripts see them in place
            bodies = {s.name: self.scripts[phase.name][s.name] for s in phase.scripts}
            if bodies:
                env = {**self.env, "HPCNET_IMAGE": image, "HPCNET_PHASE": phase.name}
                self.runner.run_phase(self._layers(phase), tmp, bodies, env, self.log)
        except BuildError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BuildError(image, phase.name, err.script, err.output) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.rename(tmp, final)

    def _version(self, exists: bool) -> None:
        image, version = self.plan.image, self.plan.version
        final = self.store.version(image, version)
        if not exists:
            tmp = final.with_name(TMP + version)
            tmp.mkdir(parents=True)
            try:
                layers = [self.store.layer(image, p.key) for p in reversed(self.plan.phases)]
                self.runner.pack(layers, tmp, self.log)
                (tmp / "manifest").write_text(manifest(tmp))
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            os.rename(tmp, final)
        self.store.record(image, [v for v in self.store.versions(image) if v != version] + [version])
        self.log(f"{image}: version {version} is the newest")


PROGRESS_TAG = "hpc/diskless/build/{image}/progress"  # the boot server's build lines, to the master


class Progress:
    """A build's output lines to the minion's log at once, and to ``send`` (the master) a batch at
    a time: mmdebstrap and apt print thousands of lines, one event each would cost more than the
    build's own network use. A batch goes when ``every`` seconds passed since the last one, and at
    each phase's first line (``image: phase ...``), so a phase's start is seen at once."""

    def __init__(self, image: str, send: Callable[[list[str]], None], log: Callable[[str], None],
                 every: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.image, self.send, self.log, self.every, self.clock = image, send, log, every, clock
        self.lines: list[str] = []
        self.sent = clock()

    def __call__(self, line: str) -> None:
        self.log(line)
        self.lines.append(line)
        if line.startswith(f"{self.image}: ") or self.clock() - self.sent >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            lines, self.lines, self.sent = self.lines, [], self.clock()
            self.send(lines)


def manifest(version_dir: Path) -> str:
    """``sha256sum`` lines for what the version serves (the initrd checks root.squashfs with
    ``sha256sum -c``)."""
    lines = []
    for name in ARTIFACTS:
        path = version_dir / name
        if path.exists():
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            lines.append(f"{digest.hexdigest()}  {name}\n")
    return "".join(lines)


# ---------------------------------------------------------------- the real one

# Runs as the only process of a private mount namespace: its mounts end with it.
# $1 = the merged root, $2 = lowerdir (top first, ':'-joined; empty: none), $3 = upper, $4 = work,
# $5 = the directory holding the phase's scripts, then the scripts' names in run order.
PHASE_DRIVER = r"""set -eu
R=$1 LOWER=$2 UPPER=$3 WORK=$4 SCRIPTS=$5
shift 5
mount --make-rprivate /
if [ -n "$LOWER" ]; then
  mount -t overlay hpcnet-image -o "lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK" "$R"
else  # the base phase's own scripts: straight on mmdebstrap's tree
  mount --bind "$UPPER" "$R"
fi
mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys"
mount --rbind /dev "$R/dev"
# Scratch that must not land in the image: the scripts themselves, /run and /tmp.
mount -t tmpfs hpcnet-run "$R/run"
mount -t tmpfs hpcnet-tmp "$R/tmp"
mkdir -p "$R/run/hpcnet-phase"
cp -p "$SCRIPTS"/* "$R/run/hpcnet-phase/"
# The build host's trust store for the scripts' downloads (Salt from PyPI), as its resolv.conf is
# apt's (below): a site whose proxy re-signs TLS has its CA there. In /run: never in the image.
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$R/run/hpcnet-host"
  cp /etc/ssl/certs/ca-certificates.crt "$R/run/hpcnet-host/ca-certificates.crt"
  export PIP_CERT=/run/hpcnet-host/ca-certificates.crt SSL_CERT_FILE=/run/hpcnet-host/ca-certificates.crt
fi
# Name resolution for apt; no daemon starts in the chroot (policy-rc.d); both gone afterwards.
made_resolv=0
if [ ! -e "$R/etc/resolv.conf" ] && [ ! -L "$R/etc/resolv.conf" ]; then : > "$R/etc/resolv.conf"; made_resolv=1; fi
[ -L "$R/etc/resolv.conf" ] || mount --bind /etc/resolv.conf "$R/etc/resolv.conf"
made_policy=0
if [ ! -e "$R/usr/sbin/policy-rc.d" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"
  chmod 755 "$R/usr/sbin/policy-rc.d"
  made_policy=1
fi
for name in "$@"; do
  echo "@@hpcnet script $name"
  rc=0
  chroot "$R" "/run/hpcnet-phase/$name" </dev/null 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then echo "@@hpcnet failed $name $rc"; exit 1; fi
done
[ "$made_policy" = 0 ] || rm -f "$R/usr/sbin/policy-rc.d"
[ -L "$R/etc/resolv.conf" ] || umount "$R/etc/resolv.conf"
[ "$made_resolv" = 0 ] || rm -f "$R/etc/resolv.conf"
echo "@@hpcnet done"
"""

# $1 = the merged root, $2 = lowerdir (every layer, top first), $3 = the version directory.
PACK_DRIVER = r"""set -eu
R=$1 LOWER=$2 OUT=$3
shift 3
mount --make-rprivate /
mount -t overlay hpcnet-image -o "ro,lowerdir=$LOWER" "$R"
for f in vmlinuz initrd.img; do
  if [ -e "$R/$f" ]; then cp -L "$R/$f" "$OUT/$f"; fi
done
# The kernel and initrd are served beside the image, not from it.
mksquashfs "$R" "$OUT/root.squashfs" -noappend -quiet -no-progress "$@" \
  -wildcards -e 'boot/vmlinuz*' 'boot/initrd.img*' 'boot/System.map*'
"""


@dataclass
class NativeRunner:
    """mmdebstrap for the base, overlayfs + chroot for the phases, mksquashfs to pack. Root only.

    ``squashfs_args``: zstd at level 6 by default, measured on this machine kind (docs/diskless.md):
    the default level (15) took several times longer for a few percent less."""

    workdir: Path
    squashfs_args: Sequence[str] = ("-comp", "zstd", "-Xcompression-level", "6")
    base_files: Path | None = None  # a tree copied into the image before its packages (inputs())

    def bootstrap(self, dest: Path, base: Mapping[str, object], log: Callable[[str], None]) -> None:
        argv = ["mmdebstrap", "--mode=root", f"--variant={base.get('variant', 'minbase')}"]
        include = list(base.get("include", ()))  # type: ignore[call-overload]
        if include:
            argv.append("--include=" + ",".join(include))
        if self.base_files and self.base_files.is_dir():
            argv.append(f"--essential-hook=sync-in {self.base_files} /")
        argv += [str(base["suite"]), str(dest)]
        if base.get("mirror"):
            argv.append(str(base["mirror"]))
        _stream(argv, log, lambda out: BuildError("?", "base", None, out))

    def run_phase(self, lower: Sequence[Path], upper: Path, scripts: Mapping[str, bytes],
                  env: Mapping[str, str], log: Callable[[str], None]) -> None:
        with self._scratch() as scratch:
            sdir = scratch / "scripts"
            sdir.mkdir()
            for name, body in scripts.items():
                (sdir / name).write_bytes(body)
                (sdir / name).chmod(0o755)
            (scratch / "root").mkdir()
            (scratch / "work").mkdir()
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", PHASE_DRIVER, "hpcnet-phase",
                    str(scratch / "root"), ":".join(map(str, lower)), str(upper), str(scratch / "work"),
                    str(sdir), *scripts]
            _stream(argv, log, _script_failure, env={**_BASE_ENV, **_proxy_env(), **env})

    def pack(self, layers: Sequence[Path], dest: Path, log: Callable[[str], None]) -> None:
        with self._scratch() as scratch:
            (scratch / "root").mkdir()
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", PACK_DRIVER, "hpcnet-pack",
                    str(scratch / "root"), ":".join(map(str, layers)), str(dest), *self.squashfs_args]
            _stream(argv, log, lambda out: BuildError("?", "pack", None, out))

    @contextlib.contextmanager
    def _scratch(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=TMP, dir=self.workdir))
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


_BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
             "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}


def node_requirements() -> str:
    """``name==version`` of each of NODE_PYTHON_PACKAGES and of everything they require, as
    installed here (the builder's own Salt environment), space-separated: what a node's
    /opt/salt gets, installed as is (``uv pip install --no-deps``): the node runs the versions the
    boot server runs, with no dependency resolution at build time. NODE_SKIPPED are left out.
    Environment markers are this Python's: a boot server whose Salt runs on another Python than
    the image's python3 may list what the node does not need (harmless) or miss what it does
    (the node's Salt then fails to import it, at its first highstate)."""
    pinned: dict[str, str] = {}
    todo = list(NODE_PYTHON_PACKAGES)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in pinned or name in NODE_SKIPPED:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise RuntimeError(f"a node's Python needs {name}, which this Salt environment lacks") from None
        pinned[name] = f"{dist.metadata['Name']}=={dist.version}"
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return " ".join(pinned[name] for name in sorted(pinned))


def _proxy_env() -> dict[str, str]:
    """The build host's proxy settings, if any: the scripts download what it would."""
    names = ("http_proxy", "https_proxy", "no_proxy")
    return {n: os.environ[n] for n in (*names, *(n.upper() for n in names)) if n in os.environ}


def _script_failure(output: str) -> BuildError:
    """The failed script's name and its own output (from its start mark to the failure mark)."""
    script, own = None, []
    for line in output.splitlines():
        if line.startswith(MARK + "script "):
            script, own = line[len(MARK + "script "):], []
        elif line.startswith(MARK + "failed "):
            break
        else:
            own.append(line)
    return BuildError("?", "?", script, "\n".join(own) if script else output)


def _stream(argv: Sequence[str], log: Callable[[str], None], failure: Callable[[str], BuildError],
            env: Mapping[str, str] | None = None) -> None:
    """Run ``argv``, passing each output line to ``log`` as it comes (a build shows its progress);
    a non-zero exit raises ``failure(output)``."""
    lines = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                          env=dict(env) if env is not None else None, stdin=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            log(line.rstrip("\n"))
    if proc.returncode != 0:
        raise failure("".join(lines))


# ---------------------------------------------------------------- the fake


@dataclass
class FakeRunner:
    """Plain directories, no chroot and no mounts: the base is a copy of ``base_tree``; a phase's
    scripts run under ``sh`` on this host with ``$ROOT`` set to the upper dir (where the lower
    layers' directories are made first), so they must write through ``${ROOT:-}``; packing writes
    the merged tree's files as JSON. For fast unit tests of the store, the caching and failures."""

    base_tree: Path

    def bootstrap(self, dest: Path, base: Mapping[str, object], log: Callable[[str], None]) -> None:
        shutil.copytree(self.base_tree, dest, dirs_exist_ok=True, symlinks=True)

    def run_phase(self, lower: Sequence[Path], upper: Path, scripts: Mapping[str, bytes],
                  env: Mapping[str, str], log: Callable[[str], None]) -> None:
        for layer in lower:
            for path in layer.rglob("*"):
                if path.is_dir() and not path.is_symlink():
                    (upper / path.relative_to(layer)).mkdir(parents=True, exist_ok=True)
        for name, body in scripts.items():
            proc = subprocess.run(["sh", "-c", body.decode(), name], env={**_BASE_ENV, **env, "ROOT": str(upper)},
                                  capture_output=True, text=True)
            for line in (proc.stdout + proc.stderr).splitlines():
                log(line)
            if proc.returncode != 0:
                raise BuildError("?", "?", name, proc.stdout + proc.stderr)

    def pack(self, layers: Sequence[Path], dest: Path, log: Callable[[str], None]) -> None:
        merged: dict[str, str] = {}
        for layer in reversed(layers):
            for path in sorted(layer.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    merged[str(path.relative_to(layer))] = path.read_bytes().decode(errors="replace")
        (dest / "root.squashfs").write_text(json.dumps(merged, sort_keys=True))
