"""The NAT router's nftables table and its conntrackd, in the one shape every state has:
read, plan; nothing to do -> True; test -> None with the plan; else apply, read and plan again.

"""

from __future__ import annotations

from salt.exceptions import CommandExecutionError

__virtualname__ = "natrouter"


def __virtual__():
    return __virtualname__


def _converge(name, what, plan, apply, key="nft"):
    """The shared shape: ``plan()`` lists what differs, ``apply()`` makes it so."""
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    try:
        changes = plan()
        if not changes:
            ret["comment"] = f"{what}: nothing to change"
            return ret
        if __opts__["test"]:
            ret.update(result=None, changes={key: changes}, comment=f"{what}: {len(changes)} change(s) planned")
            return ret
        apply()
        left = plan()
    except CommandExecutionError as exc:
        ret.update(result=False, comment=f"{what}: {exc}")
        return ret
    ret["changes"] = {key: changes}
    if left:
        ret.update(result=False, comment=f"{what}: still differs after applying: {left}")
    else:
        ret["comment"] = f"{what}: applied {len(changes)} change(s)"
    return ret


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
    return _converge(name, "nft table", lambda: __salt__["natrouter.plan"](),
                     lambda: __salt__["natrouter.apply_nft"]())


def nft_absent(name):
    """
    Our nftables table (``inet hpcnet_nat``) is gone; nothing else in the ruleset changes.

    .. code-block:: yaml

        natrouter-clean-natrouter-nft_absent:
          natrouter.nft_absent:
            - name: inet hpcnet_nat
    """
    return _converge(name, "nft table", lambda: __salt__["natrouter.remove_nft"](test=True)["changes"],
                     lambda: __salt__["natrouter.remove_nft"]())
