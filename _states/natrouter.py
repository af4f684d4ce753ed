"""The NAT router's nftables table, in the one shape of every state (``hpc_change.converge``)."""

from __future__ import annotations

from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_change

__virtualname__ = "natrouter"


def __virtual__():
    return __virtualname__


def nft_applied(name):
    """
    Our nftables table (``inet hpcnet_nat``) is exactly what the pillar asks for on this host;
    it is replaced whole, atomically, only when it differs. Other tables are never touched.
    On a host that is not a NAT router there is nothing to do.

    .. code-block:: yaml

        natrouter-config-natrouter-nft_applied:
          natrouter.nft_applied:
            - name: inet hpcnet_nat
    """
    return hpc_change.converge(name, "nft table", lambda: __salt__["natrouter.plan"](),
                    lambda _: __salt__["natrouter.apply_nft"]() and None,
                    test=__opts__["test"], errors=(CommandExecutionError,))


def nft_absent(name):
    """
    Our nftables table (``inet hpcnet_nat``) is gone; nothing else in the ruleset changes.

    .. code-block:: yaml

        natrouter-clean-natrouter-nft_absent:
          natrouter.nft_absent:
            - name: inet hpcnet_nat
    """
    return hpc_change.converge(name, "nft table", lambda: __salt__["natrouter.remove_nft"](test=True)["changes"],
                    lambda _: __salt__["natrouter.remove_nft"]() and None,
                    test=__opts__["test"], errors=(CommandExecutionError,))
