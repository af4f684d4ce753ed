"""Salt's own ``__utils__`` loader and our helpers.

At each module refresh (a sync, a package a highstate installed) a minion's utils loader runs
every file synced from ``_utils`` (``reload_modules``). Our helpers are imported through
hpc_synced, and many cannot load under Salt's module names (a dataclass with string annotations
looks its module up in ``sys.modules``, where Salt has not put it yet): each used to log an
ERROR traceback "most likely a syntax error", 20 per refresh on every minion. Each helper now
raises ImportError there, which Salt skips at debug level. Salt's real loader here."""

from __future__ import annotations

import logging

import salt.config
import salt.loader
from testlib import ROOT


def test_salt_s_utils_loader_skips_every_helper_quietly(tmp_path, caplog):
    opts = salt.config.minion_config(None)
    opts.update(utils_dirs=[str(ROOT / "_utils")], cachedir=str(tmp_path), extension_modules=str(tmp_path / "ext"))
    utils = salt.loader.utils(opts)
    with caplog.at_level(logging.ERROR, logger="salt.loader.lazy"):
        utils.reload_modules()  # what a module refresh does
    helpers = sorted(p.stem for p in (ROOT / "_utils").glob("hpc_*.py") if p.stem != "hpc_synced")
    skipped = {name for name, exc in utils.missing_modules.items() if isinstance(exc, ImportError)}
    assert [h for h in helpers if h not in skipped] == []
    assert [r.getMessage() for r in caplog.records if "hpc_" in r.getMessage()] == []
