"""The one schema of the cluster pillar: typed sections, checked one by one.

``parse_sections`` parses each section on its own, so an error in one does not
hide the errors of the others. The cross-section checks live in ``hpc_checks``,
the nodeset expansion in ``hpc_inventory``, the entry points in ``hpc_pillar``.

Pure Python; no Salt dunders, no I/O.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from hpc_types import (
    Cidr,
    Fwmark,
    IfName,
    Int,
    IPAddress,
    IPPrefix,
    Mac,
    Model,
    Name,
    NodeSetStr,
    Port,
    RulePriority,
    Seconds,
    TableId,
    Vlan,
    Vrid,
    VrrpPriority,
    Weight,
    expand,
)

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

# Schedulers built into Debian 12's kernel (CONFIG_IP_VS_*=m): ip_vs_<name>.ko
IPVS_SCHEDULERS = ("rr", "wrr", "lc", "wlc", "fo", "ovf", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "twos")
ANY_HOST = "*"  # in Parsed.shadow: a node group whose hosts cannot be known failed to parse
DEFAULT_HOSTNAME_PATTERN = r"^(?P<prefix>[a-z]*?)(?P<role>[a-z]+)(?P<id>[0-9]+)$"


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------- cluster, networks, nodes


class Cluster(Model):
    name: Name
    domain: str = "cluster.local"
    prefix: str = Field(default="", pattern=r"^[a-z]*$")
    hostname_pattern: str = DEFAULT_HOSTNAME_PATTERN

    @field_validator("hostname_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a valid regular expression ({exc})") from None
        if "role" not in compiled.groupindex:
            raise ValueError("must have a named group (?P<role>...)")
        return value


class Network(Model):
    cidr: Cidr
    gateway: IPAddress | None = None
    vlan: Vlan | None = None
    description: str = ""


class Interface(Model):
    """A node group's interface on one network: the first address (counted up per node) or one per node."""

    name: IfName
    ip: Annotated[list[IPAddress], BeforeValidator(_as_list)]
    mac: Annotated[list[Mac], BeforeValidator(_as_list)] = []


class NodeGroup(Model):
    nodeset: NodeSetStr
    role: Name
    interfaces: dict[Name, Interface] = {}
    image: Name | None = None  # diskless image these nodes boot


# ---------------------------------------------------------------- lvs and keepalived


class LvsHealth(Model):
    """How each director probes the pool's real servers (sshd accepts and says ``SSH-``)."""

    @model_validator(mode="after")
    def _connect_within_the_probe(self) -> LvsHealth:
        if self.connect_timeout > self.timeout:
            raise ValueError(f"connect_timeout: must be <= timeout ({self.timeout:g})")
        return self

    interval: float = Field(default=0.25, ge=0.05, le=60)  # seconds between two probes of one server
    timeout: float = Field(default=0.5, gt=0, le=30)  # seconds a probe may take in all
    # seconds for the connection alone: the kernel answers at once, however busy sshd is
    connect_timeout: float = Field(default=0.25, gt=0, le=30)
    fall: Annotated[Int, Field(ge=1, le=100)] = 2  # failed probes in a row: weight 0
    rise: Annotated[Int, Field(ge=1, le=100)] = 3  # good probes in a row: its weight back


class LvsLoad(Model):
    """How the master turns the frontends' load into weights (hpc_lvs_load; docs/lvs.md "Load")."""

    @model_validator(mode="after")
    def _low_below_high(self) -> LvsLoad:
        if self.high <= self.low:
            raise ValueError(f"high: must be > low ({self.low:g})")
        return self

    enabled: bool = True
    every: float = Field(default=10, ge=1, le=3600)  # seconds between a frontend's load samples
    low: float = Field(default=0.5, ge=0, le=1000)  # load per core up to which a frontend keeps its weight
    high: float = Field(default=2.0, gt=0, le=1000)  # load per core at which it is down to min_factor
    min_factor: float = Field(default=0.1, gt=0, le=1)  # load alone never takes a frontend out
    smoothing: float = Field(default=0.5, gt=0, le=1)  # weight of the newest sample (1: none)
    deadband: float = Field(default=0.1, ge=0, lt=1)  # a factor that moved less is left alone
    min_interval: float = Field(default=30, ge=0, le=86400)  # seconds between two changes of one frontend


class RealServer(Model):
    host: str
    port: Port | None = None  # NAT only: the frontend's port when it differs from the service's
    weight: Weight = 1


# IPVS service flags by name (ipvsadm's): one-packet scheduling, and the sh/mh schedulers' options.
IPVS_FLAGS = ("ops", "sh-fallback", "sh-port", "mh-fallback", "mh-port")


class LvsService(Model):
    name: Name
    network: Name  # where the VIP lives
    vip: IPAddress
    port: Port
    protocol: Literal["tcp", "udp", "fwmark"] = "tcp"
    fwmark: Fwmark | None = None  # protocol fwmark: the mark the site's firewall puts on the VIP's packets
    scheduler: Literal[IPVS_SCHEDULERS] = "wlc"  # type: ignore[valid-type]
    persistence: Seconds = 0
    # Persistence granularity: clients in one /N share a frontend (32: each address on its own).
    persistence_netmask: Annotated[Int, Field(ge=0, le=32)] = 32
    flags: list[Literal[IPVS_FLAGS]] = []  # type: ignore[valid-type]
    forward: Literal["nat", "dr", "tun"] = "dr"
    # Where the directors reach the real servers (seed 000's NAT: a private network); default: network.
    real_network: Name | None = None
    # NAT: the directors' VRRP address on real_network. The real servers send the VIP's replies
    # through it (a rule from their address), so the replies reach the director that holds the VIP
    # for the reverse translation. Omit it when their default route already leads to the directors.
    nat_gateway: IPAddress | None = None
    real_servers: list[RealServer] = []

    @model_validator(mode="after")
    def _fwmark_with_its_protocol(self) -> LvsService:
        if (self.protocol == "fwmark") != (self.fwmark is not None):
            raise ValueError("fwmark: set it exactly when protocol is fwmark")
        if "ops" in self.flags and self.protocol == "tcp":
            raise ValueError("flags: ops (one-packet scheduling) is for udp or fwmark services")
        for flag in self.flags:
            if flag[:2] in ("sh", "mh") and flag[:2] != self.scheduler:
                raise ValueError(f"flags: {flag} needs scheduler {flag[:2]} (this service has {self.scheduler})")
        if self.nat_gateway is not None and self.forward != "nat":
            raise ValueError(f"nat_gateway: only for forward nat (this service is {self.forward})")
        return self

    @property
    def reals_on(self) -> str:
        return self.real_network or self.network


class LvsSync(Model):
    """IPVS connection sync between the directors (master and backup daemons on each)."""

    network: Name  # multicast on the directors' interface on this network
    sync_id: Annotated[Int, Field(ge=0, le=255)] = 0  # tells this pair's sync from another's on one network
    # The master daemon's message size: 44 holds one IPv4 entry (8-byte header + 36), so a new
    # connection is sent at once instead of after the kernel's 2 s flush; null: the kernel's (MTU).
    maxlen: Annotated[Int, Field(ge=1, le=65507)] | None = 44


class Lvs(Model):
    directors: NodeSetStr | None = None
    services: list[LvsService] = []
    sync: LvsSync | None = None
    health: LvsHealth = LvsHealth()
    load: LvsLoad = LvsLoad()


class VrrpInstance(Model):
    name: Name
    vrid: Vrid
    network: Name
    hosts: NodeSetStr
    priorities: dict[str, VrrpPriority] = {}
    virtual_ips: list[IPPrefix]
    other_virtual_ips: dict[Name, list[IPPrefix]] = {}  # VIPs on other networks that move with this one
    advert_int: float = Field(default=1.0, gt=0, le=255)
    vrrp_version: Literal[2, 3] = 2
    nopreempt: bool = False

    @model_validator(mode="after")
    def _fast_advert_needs_v3(self) -> VrrpInstance:
        if self.advert_int < 1 and self.vrrp_version != 3:
            raise ValueError("advert_int: below 1 s requires vrrp_version 3")
        return self


class Keepalived(Model):
    instances: list[VrrpInstance] = []
    # Nice value of the VRRP process on hosts with a sub-second instance; 0: as any process.
    fast_nice: int = Field(default=-20, ge=-20, le=0)


# ---------------------------------------------------------------- routing and NAT


class Table(Model):
    id: TableId
    name: Name


class Route(Model):
    table: Name
    to: str  # a CIDR or "default"
    via: IPAddress | None = None
    dev: IfName | None = None

    @field_validator("to", mode="before")
    @classmethod
    def _to(cls, value: Any) -> str:
        return "default" if value == "default" else TypeAdapter(Cidr).validate_python(value)


class Mark(Model):
    name: Name
    fwmark: Fwmark
    table: Name
    priority: RulePriority = 100
    users: list[str] = []
    groups: list[str] = []


class PolicyRouting(Model):
    hosts: NodeSetStr | None = None
    tables: list[Table] = []
    routes: list[Route] = []
    marks: list[Mark] = []


class NatRouter(Model):
    hosts: NodeSetStr
    inside: Name  # network the marked traffic arrives from
    outside: Name  # network it leaves by, masqueraded
    vrrp_instance: Name
    conntrack_sync: bool = True
    sync_network: Name | None = None  # conntrackd's link between the routers; default: the inside network
    sync_transport: Literal["udp", "multicast"] = "udp"  # udp: unicast, exactly two hosts
    sync_group: IPAddress = "225.0.0.50"  # multicast group (sync_transport: multicast)
    sync_port: Port = 3780
    snat_address: IPAddress | None = None  # an outside address that moves with the VIP; default: masquerade


# ---------------------------------------------------------------- frontend, diskless, node


class NatReturn(Model):
    """The routing table and rule of a NAT real server's return path (``lvs.services[].nat_gateway``)."""

    table: TableId = 210
    name: Name = "lvs_nat"
    priority: RulePriority = 1000


class Frontend(Model):
    hosts: NodeSetStr
    lvs_service: Name | None = None
    client_alive_interval: Seconds = 5
    client_alive_count_max: Annotated[Int, Field(ge=1)] = 3
    shared_host_keys: bool = True
    nat_return: NatReturn = NatReturn()


def _matching(pattern: str, what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"must be {what}")
        return value
    return AfterValidator(check)


# A built image version: <image name>-<12 hex digits of its content hash> (hpc_bootmenu).
ImageVersion = Annotated[str, _matching(r"[a-z][a-z0-9_-]*-[0-9a-f]{12}",
                                        "a built version: <image>-<12 hex digits of its content hash>")]
# A RAM size as the kernel's tmpfs takes it (Scibian's cowsize): 512M, 2G.
RamSize = Annotated[str, _matching(r"[1-9][0-9]*[KMG]", "a size in K, M or G, like 512M or 2G")]
BootEntry = Literal["image", "previous", "local"]


DebPackage = Annotated[str, _matching(r"[a-z0-9][a-z0-9+.-]+", "a Debian package name")]


class Image(Model):
    name: Name
    suite: str = "bookworm"
    packages: list[DebPackage] = []
    modules: dict[Name, list[DebPackage]] = {}  # seed 002's modules: each one's packages
    version: ImageVersion | None = None  # pinned: what its nodes boot; None: the newest built
    keep: Annotated[Int, Field(ge=2)] = 3  # versions kept on the boot server, for rollback


class BootSettings(Model):
    """Every diskless node's boot menu (seed 001's bootmenu.yaml defaults)."""

    default: BootEntry = "image"  # the entry taken when the menu times out
    console: str | None = "ttyS0,115200"
    overlay_size: RamSize = "1G"  # the RAM overlay over the read-only squashfs root
    kernel_args: list[str] = []


class BootOverride(Model):
    """Settings for some nodes (``nodes``); the first override naming a node is the one it gets,
    and what it leaves unset comes from ``diskless.boot``."""

    nodes: NodeSetStr
    image: Name | None = None
    version: ImageVersion | None = None
    default: BootEntry | None = None
    console: str | None = None
    overlay_size: RamSize | None = None
    kernel_args: list[str] | None = None


class Discovery(Model):
    """Unknown machines on the admin network get an address from ``start``-``end`` and no boot file
    (a registration-only answer): their leases show them to ``diskless.register``."""

    start: IPAddress
    end: IPAddress
    lease_time: Seconds = 600


class Diskless(Model):
    server: str | None = None
    discovery: Discovery | None = None  # None: a MAC the inventory lacks gets no answer at all
    store: str = Field("/srv/hpcnet", pattern=r"^/")  # on the boot server: images/ (served) and layers/
    mirror: str = Field("http://deb.debian.org/debian", pattern=r"^(https?|file)://")
    site_scripts: str = Field("/etc/hpcnet/diskless/site", pattern=r"^/")  # seed 002's /etc/kestrel
    images: list[Image] = []
    default_image: Name | None = None  # for a node an override names, when neither names an image
    menu_timeout: Seconds = 5
    boot: BootSettings = BootSettings()
    overrides: list[BootOverride] = []


class Resolver(Model):
    nameservers: list[IPAddress] = Field(min_length=1)
    search: list[str] = []
    attempts: Annotated[Int, Field(ge=1, le=5)] = 2
    timeout: Annotated[Int, Field(ge=1, le=30)] = 1
    rotate: bool = True


class Mount(Model):
    path: str = Field(pattern=r"^/")
    device: str
    fstype: str
    options: list[str] = ["defaults"]
    hosts: NodeSetStr | None = None  # default: every node
    mount: bool = True  # False: fstab entry only


class HostsFile(Model):
    networks: list[Name] = ["admin"]
    extra: dict[str, IPAddress] = {}


class NodeBasics(Model):
    resolver: Resolver | None = None
    hosts_file: HostsFile = HostsFile()
    mounts: list[Mount] = []


SSH_KEY_TYPES = ("ed25519", "ecdsa", "rsa")
OPENSSH_KEY = "OPENSSH PRIVATE KEY"


def _openssh_private_key(value: str) -> str:
    text = value.strip()
    if not (text.startswith(f"-----BEGIN {OPENSSH_KEY}-----") and text.endswith(f"-----END {OPENSSH_KEY}-----")):
        raise ValueError("must be an OpenSSH private key (ssh-keygen's -----BEGIN OPENSSH PRIVATE KEY----- block)")
    return text + "\n"


class Secrets(Model):
    """Assigned in the pillar's top file only to the hosts that need each secret."""

    keepalived: dict[Name, Annotated[str, Field(min_length=1, max_length=8)]] = {}  # VRRPv2 auth_pass
    # The login frontends' shared SSH host keys (OpenSSH private keys, by type): frontends only.
    ssh_host_keys: dict[Literal[SSH_KEY_TYPES], Annotated[str, AfterValidator(_openssh_private_key)]] = {}  # type: ignore[valid-type]


# ---------------------------------------------------------------- the pillar as a whole

SECTIONS: dict[str, Any] = {
    "cluster": Cluster,
    "networks": dict[Name, Network],
    "nodes": list[NodeGroup],
    "lvs": Lvs,
    "keepalived": Keepalived,
    "policy_routing": PolicyRouting,
    "natrouter": NatRouter | None,
    "frontend": Frontend | None,
    "diskless": Diskless,
    "node": NodeBasics,
    "secrets": Secrets,
}
REQUIRED = ("cluster", "networks", "nodes")
SECRET_SECTIONS = ("secrets",)
_ADAPTERS = {key: TypeAdapter(tp) for key, tp in SECTIONS.items()}


@dataclass(frozen=True)
class PillarError:
    path: str
    message: str
    value: Any = None
    has_value: bool = True
    refs: tuple[str, ...] = ()  # the names a reference error is about
    ref_kind: str = ""  # what those names are: host, network, table, ...

    def __str__(self) -> str:
        got = f" (got {self.value!r})" if self.has_value else ""
        return f"{self.path}: {self.message}{got}"


class PillarInvalid(ValueError):
    def __init__(self, errors: list[PillarError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def join_path(*parts: Any) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "":
            out += f".{part}" if out else str(part)
    return out


def _message(err: dict) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known key"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be an integer"
    if kind == "literal_error":
        return "must be one of " + err["ctx"]["expected"].replace("'", "")
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        op = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}[kind]
        bound = next(iter(err["ctx"].values()))
        return f"must be {op} {bound}"
    return re.sub(r"^(Value|Assertion) error, ", "", msg)


def _pydantic_errors(section: str, exc: ValidationError) -> list[PillarError]:
    errors = []
    for err in exc.errors():
        loc, value = _location(err), err.get("input")
        msg = _message(err)
        # A model-level check names its field at the start of its message ("advert_int: ...").
        if err["type"] == "value_error" and re.match(r"^[a-z_]+: ", msg):
            field, msg = msg.split(": ", 1)
            loc.append(field)
            value = value.get(field) if isinstance(value, dict) else value
        shown = err["type"] != "missing" and section not in SECRET_SECTIONS  # a secret is never printed
        errors.append(PillarError(join_path(section, *loc), msg, value if shown else None, shown))
    return errors


def _location(err: dict) -> list[Any]:
    # pydantic puts union members and validator tags in the location; they are not keys.
    return [p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in ("str", "int", "float", "none")))]


def _names(raw: Any) -> set[str]:
    """Names a bad item declares (its name, its nodeset's hosts): references to them are not errors."""
    if not isinstance(raw, dict):
        return set()
    names = {raw["name"]} if isinstance(raw.get("name"), str) else set()
    if "nodeset" in raw:
        try:
            names.update(expand(str(raw["nodeset"])))
        except Exception:  # noqa: BLE001 - an unreadable nodeset may declare any host
            names.add(ANY_HOST)
    return names


def _try(tp: Any, raw: Any) -> Any:
    try:
        return TypeAdapter(tp).validate_python(raw)
    except ValidationError:
        return None


def _partial(tp: Any, raw: Any) -> tuple[Any, set[str]]:
    """What of a failed section still parses, item by item, keeping list indices (bad items -> None)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is list and isinstance(raw, list):
        items = [_try(args[0], item) or _partial(args[0], item)[0] for item in raw]
        return items, set().union(*(_names(r) for r, x in zip(raw, items, strict=False) if x is None))
    if typing.get_origin(tp) is dict and isinstance(raw, dict):
        entries = {k: _try(args[1], v) for k, v in raw.items()}
        return {k: v for k, v in entries.items() if v is not None}, {k for k, v in entries.items() if v is None}
    model = next((t for t in (tp, *args) if isinstance(t, type) and issubclass(t, Model)), None)
    if model is None or not isinstance(raw, dict):
        return None, set()
    fields, shadow = {}, set()
    for name, info in model.model_fields.items():
        if name not in raw:
            continue
        if typing.get_origin(info.annotation) is list and isinstance(raw[name], list):
            fields[name], names = _partial(info.annotation, raw[name])
            shadow |= names
        elif (value := _try(info.annotation, raw[name])) is not None:
            fields[name] = value
        else:
            return None, shadow
    try:
        return model.model_validate({**raw, **{k: [] for k in fields if isinstance(fields[k], list)}})\
            .model_copy(update=fields), shadow
    except ValidationError:
        return None, shadow


def _parse(key: str, raw: Any) -> tuple[Any, list[PillarError], set[str]]:
    try:
        return _ADAPTERS[key].validate_python(raw), [], set()
    except ValidationError as exc:
        value, shadow = _partial(SECTIONS[key], raw)
        return value, _pydantic_errors(key, exc), shadow


@dataclass
class Parsed:
    sections: dict[str, Any]
    errors: list[PillarError]
    shadow: set[str]  # names declared by items that failed to parse


def parse_sections(pillar: dict) -> Parsed:
    """Each section parsed on its own, so an error in one does not hide the others'."""
    out = Parsed({}, [PillarError(k, "is required", has_value=False) for k in REQUIRED if k not in pillar], set())
    for key in _ADAPTERS:
        raw = pillar.get(key)
        if raw is None and key in REQUIRED:
            continue
        if raw is None:
            raw = None if key in ("natrouter", "frontend") else {}
        value, errors, shadow = _parse(key, raw)
        if value is not None or raw is None:
            out.sections[key] = value
        out.errors += errors
        out.shadow |= shadow
    return out
