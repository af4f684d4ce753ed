"""The site's DNS servers, as the lab stands in for them: the pillar's ``node.resolver.nameservers``
held by the firewall stand-in (labfw1: the site's infrastructure) and answered by a dnsmasq of
the run from the cluster's names, the same lines the product writes into /etc/hosts
(``hpc_node.hosts_file``).

Why the lab needs them: a real cluster's nameservers answer. Without them every grains load in
the lab (each salt-call, each minion start, each module refresh) waited 10-11 s in Salt's
``ip_fqdn`` grain: the AAAA lookup of the host's own name, which /etc/hosts cannot answer, went
to three addresses nobody held (``timeout:1 attempts:2``), where a site's DNS answers at once
that the name has no IPv6 address (measured 2026-12-04: 11.4 s in a director, 10.1 s in a
namespace host; a tenth of a director's ``state.apply``)."""

from __future__ import annotations

import ipaddress

import hpc_node
import hpc_pillar
from . import host as labhost

HOSTS_FILE = "/etc/hpclab-dns.hosts"  # in the serving host's own /etc (its overlay), never this machine's


def nameservers(pillar: dict) -> list[str]:
    resolver = hpc_pillar.load(pillar)["node"].resolver
    return [str(ip) for ip in resolver.nameservers] if resolver else []


def names(pillar: dict) -> str:
    """What the lab's DNS answers: the cluster's /etc/hosts lines."""
    sections = hpc_pillar.load(pillar)
    return hpc_node.hosts_file(hpc_pillar.inventory(pillar), sections["node"].hosts_file, sections["cluster"].domain)


def addresses(pillar: dict, ifaces) -> list[str]:
    """``ip addr add`` lines giving each nameserver to the interface on its network."""
    lines = []
    for ip in nameservers(pillar):
        iface = next((i for i in ifaces if ipaddress.ip_address(ip) in ipaddress.ip_network(i.cidr, strict=False)),
                     None)
        if iface is None:
            raise RuntimeError(f"node.resolver.nameservers: {ip} is on none of the DNS stand-in's networks "
                               f"({', '.join(i.cidr for i in ifaces)}): the lab cannot answer for it")
        lines.append(f"addr add {ip}/{ipaddress.ip_network(iface.cidr, strict=False).prefixlen} dev {iface.name}")
    return lines


def dnsmasq_argv(pillar: dict) -> list[str]:
    """dnsmasq in the foreground, DNS only, on the nameservers' addresses: the cluster's names,
    NXDOMAIN for any other name in the cluster's domain, nothing forwarded (the lab has no
    upstream: a name outside the cluster is refused at once, never waited for)."""
    domain = hpc_pillar.load(pillar)["cluster"].domain
    return ["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null", "--pid-file=",
            "--no-resolv", "--no-hosts", f"--addn-hosts={HOSTS_FILE}", f"--local=/{domain}/", "--bind-interfaces",
            "--listen-address=" + ",".join(nameservers(pillar))]


def start(lab, pillar: dict, node, ip_batch) -> int | None:
    """The nameservers on ``node`` (a namespace host) and the dnsmasq answering there; its PID
    (recorded in the run: removed by PID at teardown). None when the pillar names none."""
    if not nameservers(pillar):
        return None
    ip_batch(lab.host(node.name).netns, addresses(pillar, node.ifaces))
    rc, _, err = lab.exec(node.name, ["sh", "-c", f"cat > {HOSTS_FILE}"], stdin=names(pillar))
    if rc != 0:
        raise RuntimeError(f"{HOSTS_FILE} on {node.name}: {err.strip()}")
    h = lab.host(node.name)
    return labhost.host_spawn(h, dnsmasq_argv(pillar), h.dir / "dns.log")
