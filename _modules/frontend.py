"""Login frontends (seeds 000, 001): sshd keepalive settings for this host, from the pillar; in
direct routing the VIP on lo with the ARP settings that keep it there (``hpc_frontend``); in NAT
the return path of the VIP's replies through the directors (``hpc_frontend_nat``)."""

from __future__ import annotations

import time
from pathlib import Path

from salt.exceptions import CommandExecutionError

from hpc_synced import (
    hpc_applied,
    hpc_context,
    hpc_frontend,
    hpc_frontend_nat,
    hpc_routing,
    hpc_routing_kernel,
    hpc_schema,
)

LOCK = "/run/hpcnet-frontend.lock"
SUBSYSTEM = "frontend_dr"  # its hpc_applied record: the VIPs last applied on lo
NAT_LOCK = "/run/hpcnet-frontend-nat.lock"
NAT_SUBSYSTEM = "frontend_nat"  # its hpc_applied record: the NAT return path last applied
NAT_RT_TABLES = Path("/etc/iproute2/rt_tables.d") / hpc_frontend_nat.RT_TABLES_NAME

__virtualname__ = "frontend"


def __virtual__():
    return __virtualname__


def _ctx():
    return hpc_context.load(__context__, __pillar__, __opts__, CommandExecutionError)


def is_frontend():
    """
    Whether this host is one of the pillar's login frontends.

    CLI Example:

    .. code-block:: bash

        salt '*' frontend.is_frontend
    """
    return _ctx().member["frontend"]


def load_settings():
    """
    How this host reports its load to the login pool's master (``lvs.load``): ``enabled`` on a
    real server of an lvs service when ``lvs.load.enabled``, ``every`` (seconds), and
    ``real_server``. What the frontend formula gives the ``hpc_frontend_load`` beacon. On an
    invalid pillar: all false (the pillar gate state fails the run and says why).

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.load_settings
    """
    ctx = hpc_context.load(__context__, __pillar__, __opts__)  # no raise: the gate state reports a bad pillar
    if not ctx.valid:
        return {"enabled": False, "every": 0.0, "real_server": False}
    load = ctx.sections["lvs"].load
    real_server = bool(ctx.member.get("lvs_real_server"))
    return {"enabled": real_server and load.enabled, "every": float(load.every), "real_server": real_server}


def sshd_config():
    """
    The sshd_config drop-in of a frontend: keepalive so idle sessions through the VIP survive
    (seed 000: ClientAliveInterval 5).

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.sshd_config
    """
    ctx = _ctx()
    if not ctx.member["frontend"]:
        return ""
    fe = ctx.sections["frontend"]
    # Only the shared keys: a type the pillar lacks would be this frontend's own key, and a client
    # that prefers that type would see another key on each frontend.
    host_keys = "".join(f"HostKey {host_key_path(t)}\n" for t in host_key_types())
    return ("# Managed by Salt (hpcnet frontend) from the cluster pillar.\n"
            f"ClientAliveInterval {fe.client_alive_interval}\n"
            f"ClientAliveCountMax {fe.client_alive_count_max}\n"
            "TCPKeepAlive yes\n" + host_keys)


def host_key_path(key_type):
    """
    Where sshd finds the host key of this type (Debian's default path).

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.host_key_path ed25519
    """
    return f"/etc/ssh/ssh_host_{key_type}_key"


def host_key_types():
    """
    The types of the shared host keys this frontend installs (``secrets.ssh_host_keys``), when
    ``frontend.shared_host_keys`` is true; empty otherwise. A frontend whose pillar lacks them is
    an error naming the key (assign the secret to the frontends in the pillar's top file).

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.host_key_types
    """
    ctx = _ctx()
    if not ctx.member["frontend"] or not ctx.sections["frontend"].shared_host_keys:
        return []
    keys = ctx.sections["secrets"].ssh_host_keys
    if not keys:
        raise CommandExecutionError(
            f"frontend.shared_host_keys is true but {__opts__['id']}'s pillar has no secrets.ssh_host_keys "
            "(assign them to the frontends in the pillar's top file, or set shared_host_keys: false)")
    return sorted(keys)


def host_public_key(key_type):
    """
    The public half of the shared host key of this type (``ssh-ed25519 AAAA... hpcnet``), for
    the ``.pub`` file beside the private key and for a site's ``known_hosts``. Never the private key.

    CLI Example:

    .. code-block:: bash

        salt 'labfe1' frontend.host_public_key ed25519
    """
    from cryptography.hazmat.primitives import serialization

    private = _ctx().sections["secrets"].ssh_host_keys.get(key_type)
    if private is None:
        raise CommandExecutionError(f"secrets.ssh_host_keys.{key_type}: not in this host's pillar")
    key = serialization.load_ssh_private_key(private.encode(), password=None)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode() + " hpcnet\n"


def arp_sysctls():
    """
    The ARP sysctls of a direct-routing real server: ``arp_ignore=1`` and ``arp_announce=2`` on
    each interface the directors reach it by (seed 001). Empty when it serves no DR service.

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.arp_sysctls
    """
    ctx = _ctx()
    return hpc_frontend.arp_sysctls(ctx.host, ctx.sections["lvs"])


def _lo_vips():
    out = __salt__["cmd.run_all"](["ip", "-j", "addr", "show", "dev", "lo"], python_shell=False)
    if out["retcode"] != 0:
        raise CommandExecutionError(f"ip addr show dev lo: {out['stderr'].strip()}")
    return hpc_frontend.parse_lo(out["stdout"])


def _apply_vips(vips, test, source):
    steps = hpc_frontend.plan(vips, _lo_vips())
    errors = []
    if steps and not test:
        for step in steps:
            out = __salt__["cmd.run_all"](hpc_frontend.ip_argv(step), python_shell=False, ignore_retcode=True)
            if out["retcode"] != 0:
                errors.append(f"{step.describe()}: {out['stderr'].strip()}")
        errors += [f"still differs after applying: {c.describe()}" for c in hpc_frontend.plan(vips, _lo_vips())]
    if not test:
        hpc_applied.save(__opts__["cachedir"], SUBSYSTEM, {"vips": list(vips), "source": source,
                                                            "applied_at": time.time()})
    return {"changes": [c.describe() for c in steps], "errors": errors, "applied": bool(steps) and not test}


def _reapply_record(lock, subsystem, apply, wait):
    """``apply(record)`` under ``lock`` with the last record of ``subsystem``; nothing without a
    record, or when ``wait`` is False and another apply holds the lock."""
    with hpc_applied.exclusive(lock, wait=wait) as held:
        record = hpc_applied.load(__opts__["cachedir"], subsystem) if held is not None else None
        return apply(record) if record else {"changes": [], "errors": [], "applied": False}


def dr_vips():
    """
    The VIPs this host holds on lo as a direct-routing real server (``a.b.c.d/32``).

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.dr_vips
    """
    return list(_ctx().member["dr_vips"])


def dr_plan():
    """
    What applying the pillar would change among our VIPs on lo (labelled ``lo:hpcvip``).

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.dr_plan
    """
    return {"changes": [c.describe() for c in hpc_frontend.plan(dr_vips(), _lo_vips())]}


def dr_apply(test=False):
    """
    Put the pillar's DR VIPs on lo (label ``lo:hpcvip``) and remove ours it no longer lists;
    other addresses on lo stay. Recorded: ``dr_reapply`` (at minion start and every minute)
    restores it after a reboot.

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.dr_apply
    """
    with hpc_applied.exclusive(LOCK):
        return _apply_vips(dr_vips(), test, source="pillar")


def dr_reapply(test=False, wait=True):
    """
    Apply again the VIPs the last ``dr_apply`` recorded (a reboot empties lo); nothing without
    a record. ``wait=False``: skip when another apply holds the lock.

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.dr_reapply
    """
    return _reapply_record(LOCK, SUBSYSTEM, wait=wait, apply=lambda record: _apply_vips(
        record["vips"], test, source="record"))


def dr_clean(test=False):
    """
    Remove every VIP of ours from lo (label ``lo:hpcvip``); other addresses stay. Recorded.

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.dr_clean
    """
    with hpc_applied.exclusive(LOCK):
        return _apply_vips([], test, source="clean")


def nat_return():
    """
    The NAT return path this host needs as a real server of the pillar's NAT services with a
    ``nat_gateway``: the table (``frontend.nat_return``), the rule from its address on the real
    servers' network, the routes. Empty when it serves none.

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.nat_return
    """
    return hpc_routing.state_as_data(_nat_wanted())


def _nat_wanted():
    ctx = _ctx()
    if ctx.host is None:
        return hpc_routing.RoutingState()
    fe = ctx.sections.get("frontend")
    settings = fe.nat_return if fe is not None else hpc_schema.NatReturn()
    try:
        return hpc_frontend_nat.desired(ctx.host, ctx.sections["lvs"], settings, ctx.sections["networks"])
    except ValueError as exc:
        raise CommandExecutionError(str(exc)) from None


def _apply_nat(want, test, source):
    handle = hpc_routing_kernel.NetlinkRouting(rt_tables=NAT_RT_TABLES)
    try:
        tables = set(want.tables) | set(handle.read(set()).tables)  # our file lists what earlier runs owned
        steps = hpc_routing.plan(want, handle.read(tables))
        errors = []
        if steps and not test:
            errors = hpc_routing_kernel.apply(handle, steps)
            errors += [f"still differs after applying: {c.describe()}"
                       for c in hpc_routing.plan(want, handle.read(tables))]
    finally:
        handle.close()
    if not test:
        hpc_applied.save(__opts__["cachedir"], NAT_SUBSYSTEM, {"state": hpc_routing.state_as_data(want),
                                                                "source": source, "applied_at": time.time()})
    return {"changes": [c.describe() for c in steps], "errors": errors, "applied": bool(steps) and not test}


def nat_plan():
    """
    What applying the pillar would change in the NAT return path (our table, its routes, the
    rules that look it up; nothing else).

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.nat_plan
    """
    return _apply_nat(_nat_wanted(), test=True, source="pillar")


def nat_apply(test=False):
    """
    Put the pillar's NAT return path in place and remove what of ours it no longer wants.
    Recorded: ``reapply`` (at minion start and every minute) restores it after a reboot.

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.nat_apply
    """
    with hpc_applied.exclusive(NAT_LOCK):
        return _apply_nat(_nat_wanted(), test, source="pillar")


def nat_reapply(test=False, wait=True):
    """
    Apply again the NAT return path the last ``nat_apply`` recorded (a reboot empties the table);
    nothing without a record. ``wait=False``: skip when another apply holds the lock.

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.nat_reapply
    """
    return _reapply_record(NAT_LOCK, NAT_SUBSYSTEM, wait=wait, apply=lambda record: _apply_nat(
        hpc_routing.state_from_data(record["state"]), test, source="record"))


def nat_clean(test=False):
    """
    Remove our NAT return path: the rules that look up our table, its routes, our rt_tables
    file. Recorded, so no re-apply puts it back.

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.nat_clean
    """
    with hpc_applied.exclusive(NAT_LOCK):
        return _apply_nat(hpc_routing.RoutingState(), test, source="clean")


def reapply(test=False, wait=True):
    """
    Both recorded parts of a real server's pool plumbing again: the DR VIPs on lo
    (``dr_reapply``) and the NAT return path (``nat_reapply``). What the refresh beacon runs.

    CLI Example:

    .. code-block:: bash

        salt 'labfe*' frontend.reapply
    """
    parts = (dr_reapply(test=test, wait=wait), nat_reapply(test=test, wait=wait))
    return {"changes": [c for p in parts for c in p["changes"]], "errors": [e for p in parts for e in p["errors"]],
            "applied": any(p["applied"] for p in parts)}
