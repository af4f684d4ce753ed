"""The NAT router of seed 003 on this host: our nftables table, sysctls and conntrackd.conf.

Thin: the pillar is read through the schema, the text and the plan come from ``hpc_natrouter``;
this module only runs ``nft``. It reads and writes one table, ``inet hpcnet_nat``, and never
lists or flushes the rest of the ruleset.
"""

from __future__ import annotations

import os

from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_context, hpc_natrouter, hpc_nft

__virtualname__ = "natrouter"
CONNTRACKD_CONF = "/etc/conntrackd/conntrackd.conf"


def __virtual__():
    return __virtualname__


def _me():
    """(host, natrouter section, sections, inventory) when this host is a NAT router, else None."""
    ctx = hpc_context.load(__context__, __pillar__, __opts__, CommandExecutionError)
    if not ctx.member["natrouter"]:
        return None
    return ctx.host, ctx.sections["natrouter"], ctx.sections, ctx.inventory


def _table():
    """Our table in this host's kernel (hpc_nft: read, check + apply in one transaction, delete)."""
    return hpc_nft.NftTable(hpc_nft.natrouter_codec(), run=hpc_nft.from_cmd_run_all(__salt__["cmd.run_all"]))


def _actual():
    """Our table as the kernel has it, or None when it is absent (or nft is not even installed)."""
    try:
        return _table().read()
    except hpc_nft.NftError as exc:
        raise CommandExecutionError(str(exc)) from None


def _desired():
    me = _me()
    return None if me is None else hpc_natrouter.desired(me[0], me[1], me[2]["networks"])


def is_router():
    """
    True when this host is one of ``natrouter.hosts`` in a valid pillar.

    CLI Example:

    .. code-block:: bash

        salt '*' natrouter.is_router
    """
    return _me() is not None


def nft_ruleset():
    """
    The ``nft -f`` file of our table on this host ('' when it is not a NAT router).
    It starts with ``table`` + ``delete table`` so applying it replaces our table atomically.

    CLI Example:

    .. code-block:: bash

        salt 'labnat*' natrouter.nft_ruleset
    """
    want = _desired()
    return "" if want is None else hpc_natrouter.render_table(want)


def sysctls():
    """
    The sysctls a NAT router needs: forwarding, and loose TCP window tracking when conntrack
    state is synced with the other routers ({} when not a NAT router).

    CLI Example:

    .. code-block:: bash

        salt 'labnat*' natrouter.sysctls
    """
    me = _me()
    return {} if me is None else hpc_natrouter.sysctls(me[1])


def sysctl_conf():
    """
    The /etc/sysctl.d file that keeps those sysctls across reboots ('' when not a NAT router).

    CLI Example:

    .. code-block:: bash

        salt 'labnat*' natrouter.sysctl_conf
    """
    me = _me()
    return "" if me is None else hpc_natrouter.render_sysctl(me[1])


def modules_conf():
    """
    The /etc/modules-load.d file that loads conntrack before systemd-sysctl runs at boot
    ('' when not a NAT router or nothing of ours needs it).

    CLI Example:

    .. code-block:: bash

        salt 'labnat*' natrouter.modules_conf
    """
    me = _me()
    return "" if me is None else hpc_natrouter.render_modules(me[1])


def conntrackd_config():
    """
    This router's conntrackd.conf: FTFW sync with the other routers ('' when not a NAT router
    or ``natrouter.conntrack_sync`` is false).

    CLI Example:

    .. code-block:: bash

        salt 'labnat*' natrouter.conntrackd_config
    """
    me = _me()
    if me is None:
        return ""
    host, nat, sections, inventory = me
    vips = [v for i in sections["keepalived"].instances if i is not None and i.name == nat.vrrp_instance
            for v in i.virtual_ips]
    return hpc_natrouter.render_conntrackd(host, hpc_natrouter.routers(nat, inventory), nat,
                                           vips=tuple(vips))


def plan():
    """
    What applying our table would change, one entry per chain (the table is replaced whole).
    Empty when the kernel already has it, or when this host is not a NAT router.

    CLI Example:

    .. code-block:: bash

        salt 'labnat*' natrouter.plan
    """
    want = _desired()
    if want is None:
        return []
    return [c.as_data() for c in hpc_natrouter.plan(want, _actual())]


def apply_nft(test=False):
    """
    Replace our table when the plan says so: ``nft -c -f`` checks the file, then ``nft -f``
    applies it in one transaction (the file is fed on stdin). Returns ``{"changes": [...], "applied": bool}``.

    CLI Example:

    .. code-block:: bash

        salt 'labnat*' natrouter.apply_nft
        salt 'labnat*' natrouter.apply_nft test=True
    """
    changes = plan()
    if not changes or test:
        return {"changes": changes, "applied": False}
    try:
        _table().apply(_desired())
    except hpc_nft.NftError as exc:
        raise CommandExecutionError(str(exc)) from None
    return {"changes": changes, "applied": True}


def remove_nft(test=False):
    """
    Delete our table (and nothing else) if it exists. Returns ``{"changes": [...], "applied": bool}``.

    CLI Example:

    .. code-block:: bash

        salt 'labnat*' natrouter.remove_nft
    """
    changes = [c.as_data() for c in hpc_natrouter.plan(None, _actual())]
    if test or not changes:
        return {"changes": changes, "applied": False}
    try:
        _table().delete()
    except hpc_nft.NftError as exc:
        raise CommandExecutionError(str(exc)) from None
    return {"changes": changes, "applied": True}


def status(conntrackd_conf=CONNTRACKD_CONF):
    """
    Whether this host is a NAT router, whether our table is present and as planned, whether
    forwarding is on, and whether conntrackd answers on its control socket.

    CLI Example:

    .. code-block:: bash

        salt 'labnat*' natrouter.status
    """
    if not is_router():
        return {"router": False}
    forward = __salt__["cmd.run_all"](["sysctl", "-n", "net.ipv4.ip_forward"], python_shell=False)
    answer = {"retcode": 1}
    if os.path.exists(conntrackd_conf):
        answer = __salt__["cmd.run_all"](["conntrackd", "-C", conntrackd_conf, "-s"],
                                         python_shell=False, ignore_retcode=True)
    return {
        "router": True,
        "table_present": _actual() is not None,
        "changes": plan(),
        "ip_forward": forward["stdout"].strip() == "1",
        "conntrackd_answers": answer["retcode"] == 0,
    }
