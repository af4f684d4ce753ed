"""Each diskless node's iPXE boot script, from the pillar (seed 001's bootmenu.py, generated
ahead of time instead of by a CGI at boot).

Which nodes: those whose node group names an ``image``, and those an entry of
``diskless.overrides`` names. Their settings: ``diskless.boot``, then the first override naming
the node (first match wins; what it leaves unset keeps the default). Their entries: the image's
pinned version (``diskless.images[].version``, or the newest built), the version built before
it (rollback), and the local disk; the menu takes ``default`` after ``menu_timeout`` seconds.

The boot server says which versions exist (``versions``: image -> its built versions, oldest
first); a pinned version it lacks is an error naming the pillar key, not a menu that fails at boot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hpc_inventory import Host
from hpc_schema import BootOverride, Diskless, Image
from hpc_types import expand

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

IMAGES_PATH = "images"  # under the boot server's HTTP root: images/<image>/<version>/
KERNEL, INITRD, ROOT = "vmlinuz", "initrd.img", "root.squashfs"


@dataclass(frozen=True)
class NodeBoot:
    """What one node's menu offers, resolved."""

    host: str
    image: str
    version: str
    previous: str | None
    default: str
    console: str | None
    overlay_size: str
    kernel_args: tuple[str, ...]
    interface: str | None  # the boot network's interface name on the node
    source: str  # "diskless.boot" or "diskless.overrides[i]": where its settings came from


def _override_of(name: str, overrides_hosts: Sequence[frozenset[str]]) -> int | None:
    return next((i for i, hosts in enumerate(overrides_hosts) if name in hosts), None)


def resolve(inventory: Mapping[str, Host], spec: Diskless, network: str,
            versions: Mapping[str, Sequence[str]], unbuilt: dict[str, str] | None = None) -> dict[str, NodeBoot]:
    """Every diskless node's resolved menu. ValueError naming the pillar key when an image has no
    version to boot or a pinned version was never built (or was pruned). With ``unbuilt`` (a
    dict), a node whose unpinned image has no build yet is left out and put there instead
    (node -> that image)."""
    overrides_hosts = [frozenset(expand(o.nodes)) for o in spec.overrides]  # once, not per node
    images = {i.name: i for i in spec.images}
    out = {}
    for name, host in inventory.items():
        index = _override_of(name, overrides_hosts)
        if host.image is None and index is None:
            continue
        over = spec.overrides[index] if index is not None else None
        image = (over.image if over else None) or host.image or spec.default_image
        if image is None:
            raise ValueError(f"diskless.overrides[{index}]: {name} boots diskless but no image is named "
                             "(image here, in its node group, or diskless.default_image)")
        if image not in images:
            raise ValueError(f"{name} boots image {image}, which diskless.images does not declare")
        version, key = _pinned(images[image], over, index)
        built = list(versions.get(image, ()))
        if version is None:
            if not built and unbuilt is not None:
                unbuilt[name] = image
                continue
            if not built:
                raise ValueError(f"diskless.images[{image}]: no version built yet (needed by {name})")
            version = built[-1]
        elif version not in built:
            raise ValueError(f"{key}: version {version} of image {image} is not on the boot server "
                             f"(built: {', '.join(built) or 'none'})")
        position = built.index(version)
        out[name] = NodeBoot(
            host=name, image=image, version=version, previous=built[position - 1] if position else None,
            default=_pick(over, spec, "default"), console=_pick(over, spec, "console"),
            overlay_size=_pick(over, spec, "overlay_size"), kernel_args=tuple(_pick(over, spec, "kernel_args")),
            interface=host.interfaces[network].name if network in host.interfaces else None,
            source=f"diskless.overrides[{index}]" if over else "diskless.boot")
    return out


def _pinned(image: Image, over: BootOverride | None, index: int | None) -> tuple[str | None, str]:
    if over is not None and over.version is not None:
        return over.version, f"diskless.overrides[{index}].version"
    return image.version, f"diskless.images[{image.name}].version"


def _pick(over: BootOverride | None, spec: Diskless, field: str) -> Any:
    value = getattr(over, field) if over is not None else None
    return value if value is not None else getattr(spec.boot, field)


def _kernel_line(boot: NodeBoot, version: str, base: str) -> str:
    url = f"{base}/{IMAGES_PATH}/{boot.image}/{version}"
    args = [f"initrd={INITRD}", "boot=hpcnet", f"hpcnet.root={url}/{ROOT}", f"hpcnet.manifest={url}/manifest",
            f"hpcnet.overlay={boot.overlay_size}", "BOOTIF=01-${netX/mac:hexhyp}"]
    if boot.interface:
        args.append(f"hpcnet.interface={boot.interface}")
    if boot.console:
        args.append(f"console={boot.console}")
    args += boot.kernel_args
    return f"kernel {url}/{KERNEL} {' '.join(args)}\ninitrd {url}/{INITRD}\nboot"


def ipxe_script(boot: NodeBoot, base: str, timeout: int) -> str:
    """The node's iPXE script: a menu with the pinned version, the previous one (when there is
    one) and the local disk, ``boot.default`` taken after ``timeout`` seconds."""
    default = boot.default if boot.default != "previous" or boot.previous else "image"
    lines = ["#!ipxe", f"# Managed by Salt (hpcnet diskless) for {boot.host}, from {boot.source}: "
             "local edits are overwritten.",
             f"menu {boot.host}: {boot.image}",
             f"item image {boot.image} {boot.version} (pinned)"]
    if boot.previous:
        lines.append(f"item previous {boot.image} {boot.previous} (previous)")
    lines += ["item local Local disk",
              f"choose --default {default} --timeout {timeout * 1000} target && goto ${{target}} || goto {default}",
              "", ":image", _kernel_line(boot, boot.version, base)]
    if boot.previous:
        lines += ["", ":previous", _kernel_line(boot, boot.previous, base)]
    lines += ["", ":local", "exit", ""]
    return "\n".join(lines)


def in_use(spec: Diskless, image: str, built: Sequence[str]) -> set[str]:
    """The versions of ``image`` a menu can offer: every pinned one (``images[].version`` and the
    overrides' ``version``) and the one built before each (its rollback entry). Pruning keeps them.
    The newest build (what an unpinned image boots) is kept by ``keep`` >= 2."""
    pinned = {i.version for i in spec.images if i.name == image and i.version}
    pinned |= {o.version for o in spec.overrides if o.version and o.version.rsplit("-", 1)[0] == image}
    previous = {built[built.index(v) - 1] for v in pinned if v in built and built.index(v) > 0}
    return pinned | previous


MENUS_PATH = "menus"  # under the boot server's HTTP root: menus/<node>.ipxe
BOOT_SCRIPT = "boot.ipxe"


def unbuilt_warnings(unbuilt: Mapping[str, str]) -> list[str]:
    """What the boot server says about the nodes ``resolve`` left out (node -> its image): the
    nodes, and a build of just the images they need (an image no node boots is not named)."""
    if not unbuilt:
        return []
    images = sorted(set(unbuilt.values()))
    builds = ", ".join(f"salt-run diskless.build {image}" for image in images)
    return [f"no image built yet for {', '.join(sorted(unbuilt))}: no boot menu, no network boot until "
            f"a build ({builds}, then a highstate here)"]


def menu_files(boots: Mapping[str, NodeBoot], base: str, timeout: int) -> dict[str, str]:
    """Each node's menu file (``<node>.ipxe``) and its contents."""
    return {f"{name}.ipxe": ipxe_script(boot, base, timeout) for name, boot in sorted(boots.items())}


def boot_script() -> str:
    """What DHCP hands iPXE: chain to the node's own menu, by the name its static lease gave it."""
    return "\n".join([
        "#!ipxe",
        "# Managed by Salt (hpcnet diskless): each node's menu, by the name its DHCP lease gave it.",
        f"chain --autofree {MENUS_PATH}/${{hostname}}.ipxe || goto nomenu",
        ":nomenu",
        "echo hpcnet: no boot menu for ${hostname} (${mac}): not a diskless node, or no image built yet",
        "sleep 10",
        "exit",
        ""])

