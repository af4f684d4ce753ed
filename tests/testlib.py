"""Test helpers: the example pillar as data, and a way to break a copy of it."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
for sub in ("_utils", "lab"):
    if str(ROOT / sub) not in sys.path:
        sys.path.insert(0, str(ROOT / sub))


def load_runner(name: str, opts: dict | None = None):
    """``_runners/<name>.py`` (``load_extension``)."""
    return load_extension("_runners", name, opts)


def load_extension(directory: str, name: str, opts: dict | None = None):
    """``<directory>/<name>.py`` (``_runners``, ``_modules``...) as a module of its own (not
    through Salt's loader), with ``__opts__`` set and its log kept out of Salt's deferred handler
    (closed streams at exit)."""
    import importlib.util
    import logging

    spec = importlib.util.spec_from_file_location(f"{name}{directory}", ROOT / directory / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__opts__ = opts or {}
    module.log = logging.getLogger(f"test_{name}{directory}")
    module.log.propagate = False
    return module


def example_pillar() -> dict:
    """The merged example pillar (pillar/*.sls are plain YAML, assigned to every host)."""
    data: dict = {}
    for path in sorted((ROOT / "pillar").glob("*.sls")):
        if path.name != "top.sls":
            data.update(yaml.safe_load(path.read_text()))
    return data


def mutate(data: dict, path: str, value) -> dict:
    """A copy of data with the value at a dotted path (list indices as numbers) replaced."""
    out = copy.deepcopy(data)
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    node = out
    for key in keys[:-1]:
        node = node[key]
    if isinstance(node, list) and keys[-1] == len(node):
        node.append(value)  # one past the end appends
    else:
        node[keys[-1]] = value
    return out


def netns_with_ib0(name: str, cidr: str) -> None:
    """A throwaway network namespace standing in for a node: lo up, and ib0 (a veth whose peer
    ib0p stays in the same namespace, silent) up with ``cidr``. The caller deletes it."""
    import subprocess

    ip = ["ip", "-n", name]
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(ip + ["link", "set", "lo", "up"], check=True)
    subprocess.run(ip + ["link", "add", "ib0", "type", "veth", "peer", "name", "ib0p"], check=True)
    subprocess.run(ip + ["addr", "add", cidr, "dev", "ib0"], check=True)
    for link in ("ib0", "ib0p"):
        subprocess.run(ip + ["link", "set", link, "up"], check=True)
