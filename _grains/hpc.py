"""Grains of an HPC cluster node: its role from the hostname convention, its cluster, its IB interfaces.

Configured in the minion config (grains are computed before the pillar is known):

.. code-block:: yaml

    hpc:
      cluster: lab
      hostname_pattern: '^(?P<prefix>lab)(?P<role>[a-z]+)(?P<id>[0-9]+)$'
      ib_interface_pattern: '^ib[0-9]+$'   # also count these names as IB (the lab's veth ib0)
"""

from __future__ import annotations

import os
import re
import socket

DEFAULT_HOSTNAME_PATTERN = r"^(?P<prefix>[a-z]*?)(?P<role>[a-z]+)(?P<id>[0-9]+)$"
ARPHRD_INFINIBAND = "32"
SYS_NET = "/sys/class/net"


def _config():
    return (__opts__.get("hpc") or {}) if "__opts__" in globals() else {}


def _short_name():
    # The minion id is what the master targets and what the reactors trust; the OS name is the fallback.
    name = (__opts__.get("id") if "__opts__" in globals() else None) or socket.gethostname()
    return name.split(".")[0]


def _parse_hostname(name, pattern=DEFAULT_HOSTNAME_PATTERN):
    """``<prefix><role><id>`` (seed 001) -> dict(prefix, role, id), or {} when the name does not match."""
    match = re.match(pattern, name)
    if not match:
        return {}
    parts = match.groupdict()
    return {"prefix": parts.get("prefix") or "", "role": parts.get("role"), "id": parts.get("id")}


def role():
    """hpc_role, hpc_node_id and hpc_prefix from the hostname convention."""
    parts = _parse_hostname(_short_name(), _config().get("hostname_pattern", DEFAULT_HOSTNAME_PATTERN))
    if not parts:
        return {}
    return {"hpc_role": parts["role"], "hpc_node_id": parts["id"], "hpc_prefix": parts["prefix"]}


def cluster():
    """hpc_cluster from the minion config, else the hostname prefix."""
    name = _config().get("cluster") or role().get("hpc_prefix")
    return {"hpc_cluster": name} if name else {}


def _read(path):
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except OSError:
        return None


def ib_interfaces(sys_net=SYS_NET):
    """IPoIB devices (link type 32) and devices named like ``ib_interface_pattern``, with their state."""
    pattern = _config().get("ib_interface_pattern")
    found = {}
    for name in sorted(os.listdir(sys_net)) if os.path.isdir(sys_net) else []:
        kind = _read(f"{sys_net}/{name}/type")
        if kind != ARPHRD_INFINIBAND and not (pattern and re.match(pattern, name)):
            continue
        found[name] = {
            "operstate": _read(f"{sys_net}/{name}/operstate"),
            "carrier": _read(f"{sys_net}/{name}/carrier") == "1",
            "ipoib": kind == ARPHRD_INFINIBAND,
            "mtu": int(_read(f"{sys_net}/{name}/mtu") or 0),
        }
    return {"ib_interfaces": found}
