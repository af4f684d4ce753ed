"""The validation gate: the first state of every run, so a bad pillar changes nothing on any host."""

from __future__ import annotations

__virtualname__ = "hpc"


def __virtual__():
    return __virtualname__


def pillar_valid(name):
    """
    Fail, listing every pillar mistake with its key path and bad value, unless the pillar is valid.

    Used by ``salt/hpc/validate.sls`` with ``order: 1`` and ``failhard: True``; every
    subsystem's ``init.sls`` includes it, so no other state runs after a failure.
    It fails the same way under ``test=True``: a real run would stop there too.

    .. code-block:: yaml

        hpc-validate-hpc-pillar_valid:
          hpc.pillar_valid:
            - name: cluster pillar
            - order: 1
            - failhard: True
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    errors = __salt__["hpc.validate"]()
    if errors:
        ret["result"] = False
        ret["comment"] = (f"The pillar has {len(errors)} error(s); nothing else is applied:\n"
                          + "\n".join(errors))
        return ret
    ret["comment"] = f"The pillar is valid for {__opts__['id']}"
    return ret
