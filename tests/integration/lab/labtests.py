"""What the lab tests share: the `lab` command for the session's run, and highstates read as data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from hpclab import cluster
from hpclab import salt as labsalt

LAB = Path(__file__).resolve().parents[3] / "lab" / "lab"


def lab_cli(lab: cluster.Lab, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """The `lab` command, for this session's run."""
    command, *rest = args
    return subprocess.run([str(LAB), command, "--prefix", lab.prefix, *rest],
                          capture_output=True, text=True, timeout=timeout)


def highstate(lab: cluster.Lab) -> dict:
    data = lab.salt_json(["*", "state.apply", "-t", "600"], timeout=900)
    assert sorted(data) == sorted(lab.topo.minions), data
    bad = {m: v for m, v in data.items() if not isinstance(v, dict)}
    assert not bad, bad  # a list of render errors, or "Minion did not return"
    return data


def failed(data: dict) -> dict[str, list[str]]:
    out = {m: sorted(s["__id__"] for s in v.values() if s["result"] is False) for m, v in data.items()}
    return {m: ids for m, ids in out.items() if ids}


def changed(data: dict) -> dict[str, list[str]]:
    out = {m: sorted(s["__id__"] for s in v.values() if s.get("changes")) for m, v in data.items()}
    return {m: ids for m, ids in out.items() if ids}


def salt_run(lab: cluster.Lab, *args: str, timeout: float = 300) -> tuple[int, dict, str]:
    """``salt-run ARGS`` on the lab master: (rc, its JSON return, the whole output)."""
    argv = labsalt.cli_argv(lab.run, [*args, "--out=json"], tool="salt-run")
    rc, out, err = lab.exec(lab.topo.master.name, argv, timeout=timeout)
    docs, decoder, at = [], json.JSONDecoder(), out.find("{")
    while at >= 0:  # the runner's progress messages come first, each a JSON document of its own
        doc, end = decoder.raw_decode(out, at)
        docs.append(doc)
        at = out.find("{", end)
    returned = next((d for d in reversed(docs) if "suffix" not in d), {})
    return rc, returned, out + err
