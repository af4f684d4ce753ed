"""hpc_synced: a helper changed by a sync is what the next import gets, in a process that lives on."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def synced(tmp_path, monkeypatch):
    """A private copy of hpc_synced serving ``hpcprobe_*`` helpers from tmp_path (the real one
    and its finder stay as they are)."""
    text = (ROOT / "_utils" / "hpc_synced.py").read_text()
    for old, new in (('PREFIX = "hpc_"', 'PREFIX = "hpcprobe_"'), ('NAME = "hpc_synced"', 'NAME = "hpcprobe_synced"'),
                     ("hpc_synced_finder", "hpcprobe_synced_finder")):
        text = text.replace(old, new)
    (tmp_path / "hpcprobe_synced.py").write_text(text)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as on a minion: .pyc files are written
    spec = importlib.util.spec_from_file_location("hpcprobe_synced", tmp_path / "hpcprobe_synced.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    for name in [n for n in sys.modules if n.startswith("hpcprobe_")]:
        del sys.modules[name]


def write(path: Path, text: str) -> None:
    """(Re)write ``path``; a rewrite keeps the mtime's second (1 ns later): with the same size, the
    old .pyc then looks valid to Python, the case a plain reload gets wrong."""
    before = path.stat().st_mtime_ns if path.exists() else None
    path.write_text(text)
    if before is not None:
        os.utime(path, ns=(before + 1, before + 1))


def test_unchanged_helpers_are_the_same_objects(synced, tmp_path):
    write(tmp_path / "hpcprobe_a.py", "VALUE = 1\n")
    first = synced.hpcprobe_a
    assert synced.hpcprobe_a is first and first.VALUE == 1


def test_a_changed_helper_and_those_importing_it_are_loaded_again(synced, tmp_path):
    write(tmp_path / "hpcprobe_a.py", "VALUE = 1\n")
    write(tmp_path / "hpcprobe_b.py", "from hpcprobe_a import VALUE\n")
    assert synced.hpcprobe_b.VALUE == 1
    write(tmp_path / "hpcprobe_a.py", "VALUE = 2\n")  # same size, same second
    assert synced.hpcprobe_b.VALUE == 2  # b imports from a: both are forgotten, none mixes old and new


def test_salt_probes_are_not_helpers(synced):
    with pytest.raises(AttributeError, match="no attribute '__virtual__'"):
        synced.__virtual__  # noqa: B018


def test_a_removed_helper_is_an_import_error(synced, tmp_path):
    write(tmp_path / "hpcprobe_c.py", "VALUE = 1\n")
    assert synced.hpcprobe_c.VALUE == 1
    (tmp_path / "hpcprobe_c.py").unlink()
    with pytest.raises(ImportError):
        synced.hpcprobe_c  # noqa: B018


PLAIN_HELPER_IMPORT = re.compile(r"^\s*(import hpc_\w+|from hpc_(?!synced\b)\w+ import)", re.M)


@pytest.mark.parametrize("folder", ["_modules", "_states", "_runners", "_beacons"])
def test_salt_modules_import_helpers_only_through_hpc_synced(folder):
    """A plain ``import hpc_x`` in a module would skip the check and go stale after a sync."""
    offenders = [f"{p.name}: {m.group(0).strip()}" for p in sorted((ROOT / folder).glob("*.py"))
                 for m in PLAIN_HELPER_IMPORT.finditer(p.read_text())]
    assert offenders == []
