"""The lab sees the checkout live: a file of the checkout replaced after `lab up` (a new inode, as
`git checkout`, `sed -i` or an editor's save make it) is what the lab master and the directors read
next, at once. The namespace hosts' overlay of / keeps the old dentry of a replaced file, and the
directors' root over 9p is cached: the checkout is mounted on top of both (lab/hpclab/host.py,
vm.py). The changed file goes in the checkout itself, as a user's would; the original is always put
back the same way.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpclab.cluster import REPO

pytestmark = pytest.mark.lab

PILLAR_FILE = REPO / "pillar" / "diskless.sls"  # assigned to every host by pillar/top.sls
KEY = "hpclab_checkout_probe"
NODE = "labcn1"


def _replace(path: Path, text: str) -> None:
    """``text`` into a new file next to ``path``, renamed over it: a new inode, as git checkout."""
    st = path.stat()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, st.st_mode & 0o7777)
        os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def replaced(path: Path, text: str) -> Iterator[None]:
    original = path.read_text()
    inode = path.stat().st_ino
    _replace(path, text)
    try:
        assert path.stat().st_ino != inode  # what the test is about: not an in-place write
        yield
    finally:
        _replace(path, original)
        assert path.read_text() == original


def _probe(lab) -> str:
    """The probe key of NODE's pillar, freshly compiled by the lab master ('' while absent)."""
    refreshed = lab.salt_json([NODE, "saltutil.refresh_pillar", "wait=True", "-t", "60"], timeout=120)
    assert refreshed.get(NODE) is True, refreshed
    return lab.salt_json([NODE, "pillar.item", KEY, "unmask=True", "-t", "60"], timeout=120)[NODE][KEY]


def _cat(lab, host: str, path: Path) -> str:
    rc, out, err = lab.exec(host, ["cat", str(path)], timeout=120)
    assert rc == 0, f"{host}: cat {path}: {err}"
    return out


def test_the_master_serves_a_pillar_file_replaced_in_the_checkout(lab):
    token = secrets.token_hex(4)
    assert _probe(lab) == ""  # the master has read the file as it is now
    with replaced(PILLAR_FILE, PILLAR_FILE.read_text() + f"\n{KEY}: {token}\n"):
        assert _probe(lab) == token
    assert _probe(lab) == ""


def test_hosts_and_directors_read_a_file_replaced_in_the_checkout_at_once(lab):
    hosts = [lab.topo.master.name, NODE, *(n for n, node in lab.topo.nodes.items() if node.kind == "vm")]
    original = PILLAR_FILE.read_text()
    changed = original + f"\n# {secrets.token_hex(8)}\n"
    for host in hosts:  # each has looked the file up (and cached it, where it does) before
        assert _cat(lab, host, PILLAR_FILE) == original, host
    with replaced(PILLAR_FILE, changed):
        seen = {host: _cat(lab, host, PILLAR_FILE) == changed for host in hosts}
        assert all(seen.values()), seen
    seen = {host: _cat(lab, host, PILLAR_FILE) == original for host in hosts}
    assert all(seen.values()), seen
