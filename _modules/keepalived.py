"""keepalived (VRRP and virtual IPs) on this host, rendered from the cluster pillar."""

from __future__ import annotations

from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_context, hpc_keepalived

__virtualname__ = "keepalived"


def __virtual__():
    return __virtualname__


def _ctx():
    return hpc_context.load(__context__, __pillar__, __opts__, CommandExecutionError)


def instances():
    """
    Names of the VRRP instances this host takes part in.

    CLI Example:

    .. code-block:: bash

        salt 'labnat*' keepalived.instances
    """
    return list(_ctx().member["keepalived"])


def config():
    """
    The keepalived.conf of this host ('' when it is in no VRRP instance). Holds the VRRPv2
    auth_pass of its instances: the state writes it 0600 and never shows its diff.

    CLI Example:

    .. code-block:: bash

        salt lablvs1 keepalived.config
    """
    ctx = _ctx()
    return hpc_keepalived.render(ctx.host, ctx.sections["keepalived"], dict(ctx.sections["secrets"].keepalived))


def revive(sig="/usr/sbin/keepalived", service="keepalived"):
    """
    Start keepalived again after it died (what the master runs on an ``hpc/daemon/keepalived/dead``
    event). A keepalived killed with SIGKILL leaves its virtual addresses on the interfaces: the
    peer takes them over and both hosts answer ARP for them. So the leftovers are removed first,
    then the service is started (in BACKUP: the priorities elect the master again). Nothing is
    done while keepalived runs.

    CLI Example:

    .. code-block:: bash

        salt labnat1 keepalived.revive
    """
    if __salt__["status.pid"](sig):
        return {"started": False, "removed": [], "comment": "keepalived is running"}
    ctx = _ctx()
    removed = []
    for address, iface in hpc_keepalived.virtual_addresses(ctx.host, ctx.sections["keepalived"]):
        out = __salt__["cmd.run_all"](["ip", "addr", "del", address, "dev", iface], python_shell=False,
                                      ignore_retcode=True, output_loglevel="quiet")
        if out["retcode"] == 0:
            removed.append(f"{address} dev {iface}")
    started = __salt__["service.start"](service)
    return {"started": bool(started), "removed": removed,
            "comment": f"removed {len(removed)} stale virtual address(es), started {service}"}


def notify_script():
    """
    The notify hook keepalived runs on every VRRP state change. It only records the new state in
    /run/hpcnet/vrrp/<instance>; the hpc_vrrp beacon in the running minion turns that into
    ``hpc/net/vrrp/<instance>/<state>`` for the master (which sets the minion id).

    CLI Example:

    .. code-block:: bash

        salt 'labnat*' keepalived.notify_script
    """
    return """#!/bin/sh
# Managed by Salt (hpcnet keepalived): keepalived calls this as
#   hpc-notify <instance> <INSTANCE|GROUP> <name> <MASTER|BACKUP|FAULT|STOP> <priority>
# Records the state for the hpc_vrrp beacon; never blocks keepalived.
dir=/run/hpcnet/vrrp
mkdir -p "$dir" && printf '%s %s\n' "$4" "$5" > "$dir/.$1" && mv -f "$dir/.$1" "$dir/$1"
exit 0
"""
