"""What ``diskless.build`` copies into an image's ``configure`` phase: the master's Salt extension
modules as the boot server's minion synced them, and the file cache they came from (so a node's
first highstate downloads none of them), never the state files the boot server happens to cache."""

from __future__ import annotations

from testlib import load_extension


def test_the_image_gets_the_synced_modules_and_their_file_cache_only(tmp_path):
    cache, extmods = tmp_path / "cache", tmp_path / "cache" / "extmods"
    for d in ("files/base/_modules", "files/base/_utils", "files/base/diskless", "extmods/modules"):
        (cache / d).mkdir(parents=True)
    module = load_extension("_modules", "diskless", {"cachedir": str(cache), "extension_modules": str(extmods)})
    assert module._salt_modules() == {
        "var/cache/salt/minion/extmods": extmods,
        "var/cache/salt/minion/files/base/_modules": cache / "files/base/_modules",
        "var/cache/salt/minion/files/base/_utils": cache / "files/base/_utils",
    }
