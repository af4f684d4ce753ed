"""A real server's pool plumbing (a direct-routing frontend's VIPs on lo, a NAT frontend's return
path), in the one shape of every state (``hpc_change.converge``)."""

from __future__ import annotations

from salt.exceptions import CommandExecutionError

from hpc_synced import hpc_change

__virtualname__ = "frontend"


def dr_vips_applied(name):
    """
    The VIPs of the direct-routing services this host serves are on lo (label ``lo:hpcvip``);
    ours it no longer serves are removed; other addresses on lo stay. Apply the ARP sysctls
    first (``frontend.arp_sysctls``), or the frontend answers ARP for the VIP.

    .. code-block:: yaml

        frontend-config-frontend-dr_vips_applied:
          frontend.dr_vips_applied:
            - name: lo
    """
    return hpc_change.converge_recorded(name, "VIPs on lo", lambda: __salt__["frontend.dr_plan"]()["changes"],
                                        lambda: __salt__["frontend.dr_apply"](), __opts__["test"],
                                        errors=(CommandExecutionError,))


def dr_vips_absent(name):
    """
    None of our VIPs is left on lo (other addresses stay); recorded, so no re-apply puts one back.

    .. code-block:: yaml

        frontend-clean-frontend-dr_vips_absent:
          frontend.dr_vips_absent:
            - name: lo
    """
    return hpc_change.converge(name, "VIPs on lo", lambda: __salt__["frontend.dr_clean"](test=True)["changes"],
                               lambda _: __salt__["frontend.dr_clean"]()["errors"], test=__opts__["test"],
                               errors=(CommandExecutionError,))


def nat_return_applied(name):
    """
    A NAT real server's replies go back through the directors: the rule from its address on the
    real servers' network to our table (``frontend.nat_return``), the routes in it (default via
    the service's ``nat_gateway``). Ours that the pillar no longer wants are removed; other
    rules and tables stay.

    .. code-block:: yaml

        frontend-config-frontend-nat_return_applied:
          frontend.nat_return_applied:
            - name: lvs_nat
    """
    return hpc_change.converge_recorded(name, "NAT return path", lambda: __salt__["frontend.nat_plan"]()["changes"],
                                        lambda: __salt__["frontend.nat_apply"](), __opts__["test"],
                                        errors=(CommandExecutionError,))


def nat_return_absent(name):
    """
    None of our NAT return path is left (rules to our table, its routes, our rt_tables file);
    recorded, so no re-apply puts it back.

    .. code-block:: yaml

        frontend-clean-frontend-nat_return_absent:
          frontend.nat_return_absent:
            - name: lvs_nat
    """
    return hpc_change.converge(name, "NAT return path",
                               lambda: __salt__["frontend.nat_clean"](test=True)["changes"],
                               lambda _: __salt__["frontend.nat_clean"]()["errors"], test=__opts__["test"],
                               errors=(CommandExecutionError,))
