"""A real salt-master and minions (pytest-salt-factories) serving this checkout's state tree.

The minions apply the node states for real, so the tier runs under tools/private-etc:
a private mount namespace with a copy-on-write /etc. Outside it, the tier refuses to run.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from testlib import ROOT

FILE_IGNORE = [r"/__pycache__($|/)"]

# Salt's log handlers in this process (salt-factories) flush to pytest's captured streams at exit,
# after pytest closed them: each failed write printed a "--- Logging error ---" traceback (14 per
# run), noise a reader takes for failures. Those lines have nowhere to go; do not print the error.
logging.raiseExceptions = False
MINION_HPC = {"cluster": "lab", "hostname_pattern": "^(?P<prefix>lab)(?P<role>[a-z]+)(?P<id>[0-9]+)$",
              "ib_interface_pattern": "^ib[0-9]+$"}


def _etc_is_private() -> bool:
    if os.environ.get("HPCNET_PRIVATE_ETC") != "1":
        return False
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/etc" and " - overlay " in line:
            return True
    return False


@pytest.fixture(scope="session", autouse=True)
def private_etc():
    if os.geteuid() != 0 or not _etc_is_private():
        pytest.fail("the integration tier applies states to /etc: run it as root through "
                    "tools/private-etc (make test-integration)", pytrace=False)


@pytest.fixture(scope="session")
def salt_factories_config():
    return {"code_dir": str(ROOT), "inject_sitecustomize": False, "start_timeout": 120}


@pytest.fixture(scope="module")
def pillar_dir(tmp_path_factory) -> Path:
    """A copy of the example pillar the tests may break; mounts go under a throwaway directory."""
    dest = tmp_path_factory.mktemp("pillar") / "pillar"
    shutil.copytree(ROOT / "pillar", dest)
    scratch = tmp_path_factory.mktemp("mnt") / "scratch"
    node = (dest / "node.sls").read_text().replace("path: /scratch", f"path: {scratch}")
    (dest / "node.sls").write_text(node)
    # These minions run in this machine's own network namespace: they must not be policy-routed
    # (ip rules, nft tables). Route another host instead; the lab tier tests routing for real.
    routing = (dest / "policy_routing.sls").read_text().replace("hosts: labcn[1-2]", "hosts: labfe1")
    assert "hosts: labfe1" in routing
    (dest / "policy_routing.sls").write_text(routing)
    return dest


SITE_MARKER = "/etc/hpcnet-site-marker"


@pytest.fixture(scope="module")
def site_root(tmp_path_factory) -> Path:
    """A site's own formula next to ours, as a real master would have: a top file that adds
    ``site.marker`` (a plain file.managed that never reads our pillar) to every host. It comes
    first in file_roots, so its top.sls is the one the master uses."""
    root = tmp_path_factory.mktemp("site")
    top = (ROOT / "salt" / "top.sls").read_text().rstrip("\n") + "\n    - site.marker\n"
    (root / "top.sls").write_text(top)
    (root / "site").mkdir()
    (root / "site" / "marker.sls").write_text(
        f"site-marker-file-managed:\n  file.managed:\n    - name: {SITE_MARKER}\n    - contents: site state ran\n")
    return root


@pytest.fixture
def site_marker() -> str:
    """The file the site's own state writes."""
    return SITE_MARKER


@pytest.fixture(scope="module")
def master(salt_factories, pillar_dir, site_root):
    overrides = {
        "file_roots": {"base": [str(site_root), str(ROOT / "salt"), str(ROOT / "ext")]},
        "file_ignore_regex": FILE_IGNORE,
        "pillar_roots": {"base": [str(pillar_dir)]},
        "gather_job_timeout": 5,
        "state_output": "changes",
    }
    factory = salt_factories.salt_master_daemon("hpcnet-master", overrides=overrides)
    with factory.started():
        yield factory


def _minion(master, minion_id):
    factory = master.salt_minion_daemon(minion_id, overrides={"hpc": MINION_HPC})
    return factory


@pytest.fixture(scope="module")
def cn1(master):
    with _minion(master, "labcn1").started():
        yield "labcn1"


@pytest.fixture(scope="module")
def cn2(master):
    with _minion(master, "labcn2").started():
        yield "labcn2"


@pytest.fixture(scope="module")
def salt_cli(master, cn1, cn2):
    cli = master.salt_cli(timeout=120)
    for minion in (cn1, cn2):
        ret = cli.run("saltutil.sync_all", minion_tgt=minion)
        assert ret.returncode == 0, ret
    return cli
