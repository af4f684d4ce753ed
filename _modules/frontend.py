"""Login frontends (seeds 000, 001): sshd keepalive settings for this host, from the pillar."""

from __future__ import annotations

from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_context

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
    return ("# Managed by Salt (hpcnet frontend) from the cluster pillar.\n"
            f"ClientAliveInterval {fe.client_alive_interval}\n"
            f"ClientAliveCountMax {fe.client_alive_count_max}\n"
            "TCPKeepAlive yes\n")
