"""Diskless images on the boot server, in the one shape of every state (``hpc_change.converge``)."""

from __future__ import annotations

from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_change

__virtualname__ = "diskless"


def __virtual__():
    return __virtualname__


def image_built(name):
    """
    The newest version of image ``name`` is built from what the pillar and the phase scripts say
    now: the phases whose inputs changed are run (``test=True`` lists them), the version is packed,
    old versions beyond ``keep`` are pruned (never one a menu offers). A failed phase script makes
    the state fail with its name and output, and the versions in service stay as they were.

    .. code-block:: yaml

        diskless-image-diskless-image_built-compute:
          diskless.image_built:
            - name: compute
    """
    return hpc_change.converge(name, f"image {name}", lambda: __salt__["diskless.image_changes"](name),
                               lambda _: __salt__["diskless.build"](name) and None,
                               test=__opts__["test"], errors=(CommandExecutionError,))


def menus_applied(name):
    """
    Every diskless node has its iPXE boot menu under ``<diskless.store>/menus`` as the pillar
    says (defaults, overrides, pinned versions), and no other node has one. A node whose image
    has no build yet gets none, and the state warns naming it (Salt's warnings: a highstate
    never builds an image, so a new boot server's first one is not a failure); a pinned version
    the boot server does not hold is an error.

    .. code-block:: yaml

        diskless-boot-diskless-menus_applied:
          diskless.menus_applied:
            - name: menus
    """
    return hpc_change.converge(name, "boot menus", lambda: __salt__["diskless.menus_changes"](),
                               lambda _: __salt__["diskless.apply_menus"](),
                               test=__opts__["test"], errors=(CommandExecutionError,))
