"""Beacon: a VRRP instance on this host changed state -> ``hpc/net/vrrp/<instance>/<state>``.

keepalived's notify hook only writes the new state to ``/run/hpcnet/vrrp/<instance>`` (a shell
one-liner: no process to start while keepalived fails over; a ``salt-call`` per transition
costs seconds, and 20 s inside the lab's emulated directors). This beacon, inside the running
minion, reads those files at each beacon tick and tells the master about changes, signed
(hpc_signed: the master acts only on a proven sender).

.. code-block:: yaml

    beacons:
      hpc_vrrp:
        - directory: /run/hpcnet/vrrp
"""

from __future__ import annotations

import os

from _hpc_synced import hpc_signed

__virtualname__ = "hpc_vrrp"
DIRECTORY = "/run/hpcnet/vrrp"
_SEEN: dict[str, str] = {}


def __virtual__():
    return __virtualname__


def _directory(config) -> str:
    for item in config if isinstance(config, list) else [config]:
        if isinstance(item, dict) and "directory" in item:
            return item["directory"]
    return DIRECTORY


def validate(config):
    return True, "valid"


def read_states(directory: str) -> dict[str, tuple[str, str]]:
    """instance -> (state, priority) from the files the notify hook wrote."""
    states = {}
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if name.startswith("."):
            continue
        try:
            with open(os.path.join(directory, name), encoding="ascii") as fh:
                words = fh.read().split()
        except OSError:
            continue
        if words:
            states[name] = (words[0], words[1] if len(words) > 1 else "")
    return states


def beacon(config):
    events = []
    for instance, (state, priority) in read_states(_directory(config)).items():
        if _SEEN.get(instance) != state:
            _SEEN[instance] = state
            data = {"instance": instance, "state": state, "priority": priority}
            tag = f"hpc/net/vrrp/{instance}/{state}"
            __salt__["event.send"](tag, hpc_signed.sign(__opts__, tag, data))  # proof of sender
            events.append(dict(data, tag=f"{instance}/{state}"))
    return events
