"""Diskless nodes' boot server (seeds 001, 002): DHCP and TFTP from the inventory."""

from __future__ import annotations

import logging
from pathlib import Path

import netaddr
import salt.utils.crypt
from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_bootmenu, hpc_context, hpc_diskless, hpc_image_build, hpc_types, hpc_wol

log = logging.getLogger(__name__)

__virtualname__ = "diskless"
BOOT_NETWORK = hpc_diskless.BOOT_NETWORK


def __virtual__():
    return __virtualname__


def _ctx():
    return hpc_context.load(__context__, __pillar__, __opts__, CommandExecutionError)


def is_server():
    """
    Whether this host is the pillar's boot server (``diskless.server``).

    CLI Example:

    .. code-block:: bash

        salt '*' diskless.is_server
    """
    return _ctx().member["boot_server"]


def dnsmasq_config():
    """
    dnsmasq's configuration on the boot server: static DHCP leases for every declared MAC on the
    admin network, unknown MACs ignored, TFTP on.

    CLI Example:

    .. code-block:: bash

        salt labboot1 diskless.dnsmasq_config
    """
    ctx = _ctx()
    server = ctx.host
    if BOOT_NETWORK not in server.interfaces:
        raise CommandExecutionError(f"{ctx.minion} has no interface on the {BOOT_NETWORK} network")
    return hpc_diskless.dnsmasq_conf(server, BOOT_NETWORK, ctx.sections["networks"][BOOT_NETWORK], ctx.inventory,
                                     ctx.sections["diskless"])


# ---------------------------------------------------------------- images (issue 12)

# salt://diskless/{phases,base}, put there by the diskless.image sls: the built-in phase scripts and
# the files the base gets before its packages (the initramfs's boot script).
BUILTIN = Path("/usr/share/hpcnet/diskless")


def _boot_server_ctx():
    ctx = _ctx()
    if not ctx.member.get("boot_server"):
        raise CommandExecutionError(f"{ctx.minion} is not the boot server (diskless.server: "
                                    f"{ctx.sections['diskless'].server})")
    return ctx


def _build(image, log=None):
    spec = _boot_server_ctx().sections["diskless"]
    try:
        wanted = hpc_image_build.image_named(spec.images, image)
    except ValueError as exc:
        raise CommandExecutionError(str(exc)) from None
    store = hpc_image_build.Store(Path(spec.store))
    in_use = hpc_bootmenu.in_use(spec, image, store.versions(image))
    return hpc_image_build.prepare(wanted, spec.mirror, store, BUILTIN, Path(spec.site_scripts), _script_env(),
                                   in_use, log=log or _progress, files={"configure": _salt_modules()})


NODE_CACHE = "var/cache/salt/minion"  # a node's minion cachedir (Salt's default; the image sets none)


def _salt_modules():
    """The master's Salt extension modules as this boot server's minion last synced them (each
    highstate syncs them), for the image's ``configure`` phase: the synced copies (extmods) and the
    file cache they were synced from. A node's first highstate then finds every file's hash equal
    to the master's and downloads none (a lab VM under TCG: the boot's highstate took 108 s with
    them, 154 s without; docs/diskless.md). A stale copy costs only time: the node's sync replaces
    what differs."""
    cache = Path(__opts__["cachedir"]) / "files" / "base"
    trees = {f"{NODE_CACHE}/extmods": Path(__opts__["extension_modules"])}
    trees |= {f"{NODE_CACHE}/files/base/{d.name}": d for d in sorted(cache.glob("_*")) if d.is_dir()}
    return trees


def _script_env():
    """What the phase scripts are told (and what the plan hashes): this minion's master, the
    master's key fingerprint (the nodes' minions check it), and Salt's version (the nodes run the
    master's own)."""
    master = __opts__.get("master")
    env = {"HPCNET_MASTER": ",".join(master) if isinstance(master, list) else str(master),
           "HPCNET_PYTHON_REQUIREMENTS": hpc_image_build.node_requirements()}
    pub = Path(__opts__.get("pki_dir", "")) / "minion_master.pub"
    if pub.is_file():
        hash_type = __opts__.get("hash_type", "sha256")
        env["HPCNET_MASTER_FINGER"] = salt.utils.crypt.pem_finger(str(pub), sum_type=hash_type)
    return env


def _progress(line):
    log.info("diskless build: %s", line)


def image_changes(image):
    """
    What building ``image`` would do, as the shared plan shape: the phases to run (those the cache
    lacks), the version to pack, the old versions to prune. Changes nothing.

    CLI Example:

    .. code-block:: bash

        salt labboot1 diskless.image_changes compute
    """
    return [c.as_data() for c in _build(image)[1]]


def build(image, test=False):
    """
    Build ``image`` (``diskless.images``) in seed 002's phases, from the first phase whose inputs
    changed; pack the new version (squashfs, kernel, initrd, manifest) and prune old ones. A failed
    phase script stops the build, is named with its output, and leaves every version as it was.

    CLI Example:

    .. code-block:: bash

        salt labboot1 diskless.build compute
        salt labboot1 diskless.build compute test=True
    """
    progress = hpc_image_build.Progress(image, lambda lines: _send_progress(image, lines), _progress)
    plan, steps, runner = _build(image, log=progress)
    out = {"image": image, "version": plan.version, "steps": [c.describe() for c in steps]}
    if test or not steps:
        return out
    try:
        runner.apply(steps)
    except hpc_image_build.BuildError as err:
        raise CommandExecutionError(str(err)) from None
    finally:
        progress.flush()
    return out


def _send_progress(image, lines):
    """A batch of build lines to the master, where ``salt-run diskless.build`` shows them."""
    try:
        __salt__["event.fire_master"]({"image": image, "lines": lines},
                                      hpc_image_build.PROGRESS_TAG.format(image=image))
    except Exception:  # noqa: BLE001 - progress is a courtesy: the build goes on without it
        log.debug("diskless build: progress not sent", exc_info=True)


def versions(image):
    """
    The built versions of ``image`` on this boot server, oldest first (the last one is what an
    unpinned image boots).

    CLI Example:

    .. code-block:: bash

        salt labboot1 diskless.versions compute
    """
    spec = _boot_server_ctx().sections["diskless"]
    return hpc_image_build.Store(Path(spec.store)).versions(image)


# ---------------------------------------------------------------- wake-on-LAN (issue 12)


def wake(nodes):
    """
    Send a wake-on-LAN magic packet to each node of ``nodes`` (a nodeset) from this boot server,
    out of its interface on the admin network, to that network's broadcast address. Nothing is
    sent when one of them is not declared or has no MAC on the admin network.

    CLI Example:

    .. code-block:: bash

        salt labboot1 diskless.wake 'labcn[1-2]'
    """
    ctx = _boot_server_ctx()
    try:
        found = hpc_wol.targets(hpc_types.expand(nodes), ctx.inventory, BOOT_NETWORK)
    except ValueError as err:
        raise CommandExecutionError(f"diskless.wake {nodes}: {err}") from None
    net = ctx.sections["networks"][BOOT_NETWORK]
    broadcast = str(netaddr.IPNetwork(net.cidr).broadcast)
    sent = hpc_wol.send(found, ctx.host.interfaces[BOOT_NETWORK].name, broadcast)
    return {"sent": sent, "broadcast": broadcast, "nodes": {t.host: t.mac for t in found}}


# ---------------------------------------------------------------- boot menus (issue 12)


def _menus_dir(spec):
    return Path(spec.store) / hpc_bootmenu.MENUS_PATH


def _menus_wanted():
    """(file name -> contents, warnings) for every diskless node whose image has a build."""
    ctx = _boot_server_ctx()
    spec = ctx.sections["diskless"]
    store = hpc_image_build.Store(Path(spec.store))
    versions = {i.name: store.versions(i.name) for i in spec.images}
    unbuilt: dict[str, str] = {}
    try:
        boots = hpc_bootmenu.resolve(ctx.inventory, spec, BOOT_NETWORK, versions, unbuilt=unbuilt)
    except ValueError as err:
        raise CommandExecutionError(str(err)) from None
    warnings = hpc_bootmenu.unbuilt_warnings(unbuilt)
    base = hpc_diskless.http_base(ctx.host, BOOT_NETWORK)
    return hpc_bootmenu.menu_files(boots, base, spec.menu_timeout), warnings


def menus_changes():
    """
    What writing the boot menus would change under ``<diskless.store>/menus``: a menu added,
    rewritten or deleted (a node no longer diskless), as the shared plan shape; ``warnings``
    names the nodes that get no menu because their image has no build yet (a highstate never
    builds one: that is for ``salt-run diskless.build``).

    CLI Example:

    .. code-block:: bash

        salt labboot1 diskless.menus_changes
    """
    want, warnings = _menus_wanted()
    folder = _menus_dir(_boot_server_ctx().sections["diskless"])
    have = {p.name: p.read_text() for p in folder.glob("*.ipxe")} if folder.is_dir() else {}
    changes = [{"op": "add" if name not in have else "update", "kind": "menu", "key": name}
               for name, text in want.items() if have.get(name) != text]
    changes += [{"op": "delete", "kind": "menu", "key": name} for name in sorted(set(have) - set(want))]
    return {"changes": changes, "warnings": warnings}


def apply_menus():
    """
    Write every diskless node's iPXE menu under ``<diskless.store>/menus`` (each file replaced
    whole, atomically) and delete the menus of nodes that are no longer diskless. Returns the
    files that could not be written.

    CLI Example:

    .. code-block:: bash

        salt labboot1 diskless.apply_menus
    """
    want, _ = _menus_wanted()
    folder = _menus_dir(_boot_server_ctx().sections["diskless"])
    folder.mkdir(parents=True, exist_ok=True)
    failed = []
    for name, text in want.items():
        try:
            hpc_image_build.write_atomic(folder / name, text)
        except OSError as err:
            failed.append(f"{name}: {err}")
    for stale in folder.glob("*.ipxe"):
        if stale.name not in want:
            stale.unlink()
    return failed


def boot_script():
    """
    The iPXE script DHCP hands to iPXE (``<diskless.store>/boot.ipxe``): it chains to the node's
    own menu.

    CLI Example:

    .. code-block:: bash

        salt labboot1 diskless.boot_script
    """
    return hpc_bootmenu.boot_script()


# ---------------------------------------------------------------- registration (issue 12)

LEASES = "/var/lib/misc/dnsmasq.leases"  # Debian's dnsmasq default


def leases():
    """
    The boot server's DHCP leases, as dnsmasq keeps them (``diskless.register`` on the master
    reads them through this).

    CLI Example:

    .. code-block:: bash

        salt labboot1 diskless.leases
    """
    _boot_server_ctx()
    try:
        return Path(LEASES).read_text()
    except FileNotFoundError:
        return ""
