"""hpc_reload: a synced helper file replaces the module a long-running minion imported."""

from __future__ import annotations

import importlib
import os
import sys

import hpc_reload


def test_a_changed_helper_is_loaded_again(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "hpcprobe_a.py").write_text("VALUE = 1\n")
    (tmp_path / "hpcprobe_b.py").write_text("from hpcprobe_a import VALUE\n")
    try:
        import hpcprobe_b  # noqa: I001

        assert hpcprobe_b.VALUE == 1
        assert "hpcprobe_b" not in hpc_reload.forget_changed("hpcprobe_")  # nothing changed: nothing forgotten
        (tmp_path / "hpcprobe_a.py").write_text("VALUE = 2\n")
        stat = os.stat(tmp_path / "hpcprobe_a.py")
        os.utime(tmp_path / "hpcprobe_a.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        forgotten = hpc_reload.forget_changed("hpcprobe_")
        assert {"hpcprobe_a", "hpcprobe_b"} <= set(forgotten)  # b imports from a: both go
        importlib.invalidate_caches()
        assert importlib.import_module("hpcprobe_b").VALUE == 2
    finally:
        for name in ("hpcprobe_a", "hpcprobe_b"):
            sys.modules.pop(name, None)
