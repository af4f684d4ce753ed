"""Field types shared by every pillar section, each with a message that names the rule.

Pure Python (pydantic, netaddr, ClusterShell); no Salt dunders, no I/O.
A failed check raises ValueError("must be ..."); the schema adds the key path
and the bad value, so the message reads like
``lvs.services[0].real_servers[2].weight: must be 0..65535 (got -1)``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import netaddr
from ClusterShell.NodeSet import NodeSet, NodeSetException
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")


class Model(BaseModel):
    """Base of every pillar model: unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _int_range(low: int, high: int | None):
    def check(value: int) -> int:
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be {low}..{high}" if high is not None else f"must be >= {low}")
        return value

    return AfterValidator(check)


def _strict_int(value: Any) -> Any:
    # YAML gives ints; a bool or float here is a typo (yes/no, 1.5), not a number.
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("must be an integer")
    return value


Int = Annotated[int, BeforeValidator(_strict_int)]
Port = Annotated[Int, _int_range(1, 65535)]
Weight = Annotated[Int, _int_range(0, 65535)]
Seconds = Annotated[Int, _int_range(0, None)]
VrrpPriority = Annotated[Int, _int_range(1, 254)]
Vrid = Annotated[Int, _int_range(1, 255)]
Vlan = Annotated[Int, _int_range(1, 4094)]
TableId = Annotated[Int, _int_range(1, 252)]
Fwmark = Annotated[Int, _int_range(1, 2**32 - 1)]
RulePriority = Annotated[Int, _int_range(1, 32765)]


def _ip(value: Any) -> str:
    try:
        return str(netaddr.IPAddress(str(value)))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise ValueError("must be an IP address") from None


def _cidr(value: Any) -> str:
    text = str(value)
    try:
        net = netaddr.IPNetwork(text) if "/" in text else None
    except (netaddr.AddrFormatError, ValueError, TypeError):
        net = None
    if net is None:
        raise ValueError("must be a network in CIDR form (a.b.c.d/len)")
    if net.ip != net.network:
        raise ValueError(f"has host bits set (did you mean {net.cidr}?)")
    return str(net.cidr)


def _prefix(value: Any) -> str:
    """An address with its prefix length, as a VIP is configured (10.0.0.5/24)."""
    text = str(value)
    try:
        net = netaddr.IPNetwork(text if "/" in text else text + "/32")
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise ValueError("must be an IP address, optionally with /len") from None
    return f"{net.ip}/{net.prefixlen}"


def _mac(value: Any) -> str:
    try:
        return str(netaddr.EUI(str(value), dialect=netaddr.mac_unix_expanded))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise ValueError("must be a MAC address (aa:bb:cc:dd:ee:ff)") from None


def _nodeset(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("must be a non-empty nodeset (e.g. cn[001-128])")
    try:
        NodeSet(text)
    except NodeSetException as exc:
        raise ValueError(f"is not a valid nodeset ({exc})") from None
    return text


_NAME = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,62})$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError("must be a lowercase name of letters, digits, '-' or '_' (max 63)")
    return value


def _ifname(value: Any) -> str:
    if not isinstance(value, str) or not _IFNAME.match(value) or value in (".", ".."):
        raise ValueError("must be a Linux interface name (1..15 chars, no spaces or '/')")
    return value


IPAddress = Annotated[str, BeforeValidator(_ip)]
Cidr = Annotated[str, BeforeValidator(_cidr)]
IPPrefix = Annotated[str, BeforeValidator(_prefix)]
Mac = Annotated[str, BeforeValidator(_mac)]
NodeSetStr = Annotated[str, BeforeValidator(_nodeset)]
Name = Annotated[str, BeforeValidator(_name)]
IfName = Annotated[str, BeforeValidator(_ifname)]


def expand(nodeset: str) -> list[str]:
    """The host names of a (valid) nodeset, in nodeset order."""
    return list(NodeSet(nodeset))
