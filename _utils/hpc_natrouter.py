"""The NAT router of seed 003: our nftables table, conntrackd.conf, and the plan between them.

We own exactly one nftables table, ``inet hpcnet_nat``: a forward chain (policy drop) that lets
the inside network out and only replies back in, and a postrouting chain that masquerades (or
SNATs to a moving address) what leaves by the outside interface from the inside network. It is
always replaced whole in one ``nft -f`` transaction, so it is never seen half-written; other
tables are never read as ours nor touched.

Pure Python: ``desired`` and ``render_*`` build text from the pillar models, ``parse_table``
reads ``nft -j list table inet hpcnet_nat`` output, ``plan`` compares. No Salt dunders, no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hpc_change import Change
from hpc_inventory import Host
from hpc_schema import NatRouter, Network
from hpc_types import expand

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

FAMILY = "inet"
TABLE = "hpcnet_nat"
FORWARDING = {"net.ipv4.ip_forward": 1}
# With conntrack sync, packets of one flow may pass the other router for a moment (a takeover, two
# masters for an advert or two): window tracking then calls the next ones invalid, and an invalid
# packet is neither NATed nor de-NATed, so the server answers the inside address with a RST. Seen
# in the lab as reset flows; conntrackd's manual asks for this on firewall clusters.
SYNC_SYSCTLS = {"net.netfilter.nf_conntrack_tcp_be_liberal": 1}
CONNTRACK_MODULE = "nf_conntrack"  # loaded at boot, or systemd-sysctl finds no net.netfilter keys
# nft prints these priority names; the JSON carries the numbers.
PRIORITY_NAMES = {("filter", 0): "filter", ("nat", 100): "srcnat", ("nat", -100): "dstnat"}
HEADER = "# Managed by Salt (hpcnet natrouter) from the cluster pillar: local edits are overwritten."


# ---------------------------------------------------------------- the model


@dataclass(frozen=True)
class Rule:
    """One rule of ours. ``verdict`` is 'accept', 'drop', 'masquerade' or 'snat ip to ADDR'; a rule the
    parser does not understand keeps its JSON in ``unknown``, so it never equals a desired rule."""

    verdict: str
    iif: str | None = None
    oif: str | None = None
    saddr: str | None = None  # a CIDR
    ct_state: tuple[str, ...] = ()  # sorted
    unknown: str = ""

    def text(self) -> str:
        if self.unknown:
            return f"# not understood: {self.unknown}"
        parts = []
        if self.iif:
            parts.append(f'iifname "{self.iif}"')
        if self.oif:
            parts.append(f'oifname "{self.oif}"')
        if self.saddr:
            parts.append(f"ip saddr {self.saddr}")
        if self.ct_state:
            parts.append(f"ct state {','.join(self.ct_state)}")
        return " ".join(parts + [self.verdict])


@dataclass(frozen=True)
class Chain:
    name: str
    type: str
    hook: str
    priority: int
    policy: str
    rules: tuple[Rule, ...] = ()

    def key(self) -> str:
        return self.name

    def as_data(self) -> str:
        return self.text()

    def text(self) -> str:
        prio = PRIORITY_NAMES.get((self.type, self.priority), str(self.priority))
        lines = [f"    chain {self.name} {{",
                 f"        type {self.type} hook {self.hook} priority {prio}; policy {self.policy};"]
        lines += [f"        {r.text()}" for r in self.rules]
        return "\n".join(lines + ["    }"])


@dataclass(frozen=True)
class Table:
    chains: tuple[Chain, ...] = ()
    family: str = FAMILY
    name: str = TABLE

    def chain(self, name: str) -> Chain | None:
        return next((c for c in self.chains if c.name == name), None)

    def as_data(self) -> str:
        return render_table(self)


# ---------------------------------------------------------------- desired state from the pillar


def is_router(host: str, nat: NatRouter | None) -> bool:
    return nat is not None and host in expand(nat.hosts)


def routers(nat: NatRouter, inventory: dict[str, Host]) -> list[Host]:
    """The declared NAT routers, in nodeset order: conntrackd's peers."""
    return [inventory[name] for name in expand(nat.hosts) if name in inventory]


def desired(host: Host, nat: NatRouter, networks: dict[str, Network]) -> Table:
    """Our table on ``host``: inside -> outside any, outside -> inside replies only, NAT on the way out."""
    inside, outside = host.interfaces[nat.inside].name, host.interfaces[nat.outside].name
    verdict = f"snat ip to {nat.snat_address}" if nat.snat_address else "masquerade"
    forward = Chain("forward", "filter", "forward", 0, "drop", (
        # Never out un-NATed: an invalid packet would leave with its inside source address.
        Rule("drop", ct_state=("invalid",)),
        Rule("accept", iif=inside, oif=outside),
        # A new connection from outside is never forwarded in: replies and ICMP errors only.
        Rule("accept", iif=outside, oif=inside, ct_state=("established", "related")),
    ))
    postrouting = Chain("postrouting", "nat", "postrouting", 100, "accept", (
        Rule(verdict, oif=outside, saddr=networks[nat.inside].cidr),
    ))
    return Table((forward, postrouting))


def render_table(table: Table) -> str:
    """An ``nft -f`` file replacing our table in one transaction. The first two lines make the
    delete safe when the table is absent; nothing outside our table is named, so nothing else changes."""
    lines = [HEADER,
             f"table {table.family} {table.name}",
             f"delete table {table.family} {table.name}",
             f"table {table.family} {table.name} {{"]
    lines.append("\n\n".join(c.text() for c in table.chains))
    return "\n".join(lines + ["}"]) + "\n"


def sysctls(nat: NatRouter) -> dict[str, int]:
    return {**FORWARDING, **(SYNC_SYSCTLS if nat.conntrack_sync else {})}


def render_sysctl(nat: NatRouter) -> str:
    return HEADER + "\n" + "".join(f"{k} = {v}\n" for k, v in sysctls(nat).items())


def render_modules(nat: NatRouter) -> str:
    """The modules-load.d file: the conntrack module, when a sysctl of ours needs it at boot."""
    return f"{HEADER}\n{CONNTRACK_MODULE}\n" if nat.conntrack_sync else ""


# ---------------------------------------------------------------- conntrackd.conf


@dataclass(frozen=True)
class ConntrackdPaths:
    """Where the daemon keeps its lock and control socket (tests run a private one)."""

    lock_file: str = "/var/lock/conntrackd.lock"
    socket: str = "/var/run/conntrackd.sock"


DEFAULT_PATHS = ConntrackdPaths()


def _sync_channel(host: Host, peers: list[Host], nat: NatRouter) -> list[str]:
    net = nat.sync_network or nat.inside
    iface = host.interfaces[net]
    if nat.sync_transport == "udp":
        peer = next(p for p in peers if p.name != host.name)
        return ["    UDP {",
                f"        IPv4_address {iface.ip}",
                f"        IPv4_Destination_Address {peer.interfaces[net].ip}",
                f"        Port {nat.sync_port}",
                f"        Interface {iface.name}",
                "        SndSocketBuffer 1249280",
                "        RcvSocketBuffer 1249280",
                "        Checksum yes",
                "    }"]
    return ["    Multicast {",
            f"        IPv4_address {nat.sync_group}",
            f"        Group {nat.sync_port}",
            f"        IPv4_interface {iface.ip}",
            f"        Interface {iface.name}",
            "        SndSocketBuffer 1249280",
            "        RcvSocketBuffer 1249280",
            "        Checksum yes",
            "    }"]


def render_conntrackd(host: Host, peers: list[Host], nat: NatRouter,
                      paths: ConntrackdPaths = DEFAULT_PATHS, vips: tuple[str, ...] = ()) -> str:
    """conntrackd.conf for ``host``; ``peers`` are all the routers (``host`` among them), ``vips``
    the virtual IPs of the routers' VRRP instance."""
    if not nat.conntrack_sync:
        return ""
    own = sorted({i.ip for i in host.interfaces.values()}) + [v.split("/")[0] for v in vips]
    lines = [HEADER,
             "Sync {",
             "    Mode FTFW {",
             # States go straight into the peer's kernel table: a new master forwards established
             # flows at once, with no commit hook in keepalived (which this subsystem does not own).
             "        DisableExternalCache yes",
             "    }"]
    lines += _sync_channel(host, peers, nat)
    lines += ["}",
              "General {",
              "    HashSize 32768",
              "    HashLimit 131072",
              "    Syslog on",
              f"    LockFile {paths.lock_file}",
              "    UNIX {",
              f"        Path {paths.socket}",
                    "    }",
              "    NetlinkBufferSize 2097152",
              "    NetlinkBufferSizeMaxGrowth 8388608",
              "    Systemd yes",  # Debian's unit is Type=notify; a no-op without systemd
              "    Filter From Userspace {",
              "        Protocol Accept {",
              "            TCP",
              "            UDP",
              "            ICMP",
              "        }",
              # Connections to and from the router itself are its own business, not a flow to hand over.
              "        Address Ignore {",
              "            IPv4_address 127.0.0.1"]
    lines += [f"            IPv4_address {ip}" for ip in own]
    lines += ["        }", "    }", "}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- reading `nft -j list table`


def _match(rule: dict[str, Any], m: dict[str, Any]) -> bool:
    """Fold one match expression into ``rule`` (a dict of Rule fields); False if not ours."""
    left, right, op = m.get("left", {}), m.get("right"), m.get("op")
    meta = left.get("meta", {}).get("key") if isinstance(left, dict) else None
    if meta in ("iifname", "oifname") and op == "==" and isinstance(right, str):
        rule[meta[:3]] = right
        return True
    payload = left.get("payload", {}) if isinstance(left, dict) else {}
    if payload == {"protocol": "ip", "field": "saddr"} and op == "==":
        prefix = right.get("prefix") if isinstance(right, dict) else None
        rule["saddr"] = f"{prefix['addr']}/{prefix['len']}" if prefix else f"{right}/32"
        return True
    if left == {"ct": {"key": "state"}} and op in ("==", "in"):
        rule["ct_state"] = tuple(sorted(right if isinstance(right, list) else [right]))
        return True
    return False


def _verdict(expr: dict[str, Any]) -> str | None:
    if "snat" in expr and isinstance(expr["snat"], dict) and set(expr["snat"]) <= {"family", "addr"}:
        return f"snat ip to {expr['snat']['addr']}"
    for word in ("accept", "drop", "masquerade"):
        if word in expr and expr[word] is None:
            return word
    return None


def parse_rule(exprs: list[dict[str, Any]]) -> Rule:
    fields: dict[str, Any] = {}
    verdict = None
    for i, expr in enumerate(exprs):
        last = i == len(exprs) - 1
        if last and (verdict := _verdict(expr)):
            break
        if not ("match" in expr and _match(fields, expr["match"])):
            return Rule("", unknown=json.dumps(exprs, sort_keys=True))
    if verdict is None:
        return Rule("", unknown=json.dumps(exprs, sort_keys=True))
    return Rule(verdict, **fields)


def _ours(obj: dict[str, Any]) -> bool:
    return obj.get("family") == FAMILY and obj.get("table") == TABLE


def parse_table(data: str | dict[str, Any] | None) -> Table | None:
    """Our table from ``nft -j list table inet hpcnet_nat`` output; None when it is absent."""
    if data is None or data == "":
        return None
    doc = json.loads(data) if isinstance(data, str) else data
    items = doc.get("nftables", [])
    tables = [i["table"] for i in items if "table" in i]
    if not any(t["family"] == FAMILY and t["name"] == TABLE for t in tables):
        return None
    rules: dict[str, list[Rule]] = {}
    for item in items:
        if "rule" in item and _ours(item["rule"]):
            rules.setdefault(item["rule"]["chain"], []).append(parse_rule(item["rule"].get("expr", [])))
    chains = tuple(
        Chain(c["name"], c.get("type", ""), c.get("hook", ""), c.get("prio", 0), c.get("policy", ""),
              tuple(rules.get(c["name"], [])))
        for c in (i["chain"] for i in items if "chain" in i and _ours(i["chain"]))
    )
    return Table(chains)


# ---------------------------------------------------------------- the plan


def plan(want: Table | None, have: Table | None) -> list[Change]:
    """What differs, chain by chain; any change means the table is replaced whole (in one
    transaction). ``want`` None: our table must go (the host is no NAT router any more)."""
    table_key = f"{FAMILY} {TABLE}"
    if want is None:
        return [] if have is None else [Change("delete", "table", table_key, old=have, summary=table_key)]
    if have is None:
        return [Change("add", "table", table_key, new=want, summary=f"{table_key}:\n{render_table(want)}")]
    changes = []
    for chain in want.chains:
        old = have.chain(chain.name)
        if old is None:
            changes.append(_chain("add", table_key, None, chain))
        elif old != chain:
            changes.append(_chain("update", table_key, old, chain))
    changes += [_chain("delete", table_key, c, None) for c in have.chains if want.chain(c.name) is None]
    return changes


def _chain(op: str, table_key: str, old: Chain | None, new: Chain | None) -> Change:
    chain = new or old
    assert chain is not None
    return Change(op, "chain", f"{table_key} {chain.name}", old=old, new=new,
                  summary=f"{table_key} {chain.name}:\n{chain.text()}")
