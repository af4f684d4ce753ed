"""Diskless nodes' boot server (seeds 001, 002): DHCP and TFTP from the inventory."""

from __future__ import annotations

import logging
from pathlib import Path

import netaddr
from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_bootmenu, hpc_context, hpc_diskless, hpc_image, hpc_image_build, hpc_types, hpc_wol

log = logging.getLogger(__name__)

__virtualname__ = "diskless"
BOOT_NETWORK = "admin"  # seed 001: deployment runs on the administration network


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
    wanted = next((i for i in spec.images if i.name == image), None)
    if wanted is None:
        raise CommandExecutionError(f"diskless.images: no image named {image!r} "
                                    f"(declared: {', '.join(i.name for i in spec.images) or 'none'})")
    store = hpc_image_build.Store(Path(spec.store))
    base, packages, bodies = hpc_image_build.inputs(wanted, spec.mirror, hpc_image_build.BOOT_PACKAGES,
                                                    BUILTIN / "phases", Path(spec.site_scripts), BUILTIN / "base")
    scripts = {p: hpc_image.scripts(p, bodies["builtin"].get(p, {}), bodies["site"].get(p, {}))
               for p in hpc_image.PHASES}
    plan = hpc_image.plan(image, base, packages, scripts, store.cached(image))
    built = store.versions(image)
    steps = hpc_image_build.changes(plan, store, wanted.keep, hpc_bootmenu.in_use(spec, image, built))
    merged = {p: {**bodies["builtin"].get(p, {}), **bodies["site"].get(p, {})} for p in hpc_image.PHASES}
    runner = hpc_image_build.NativeRunner(store.root / "work", base_files=BUILTIN / "base")
    return plan, steps, hpc_image_build.Build(plan, store, runner, base, merged, log=log or _progress)


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
    plan, steps, runner = _build(image)
    out = {"image": image, "version": plan.version, "steps": [c.describe() for c in steps]}
    if test or not steps:
        return out
    try:
        runner.apply(steps)
    except hpc_image_build.BuildError as err:
        raise CommandExecutionError(str(err)) from None
    return out


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
