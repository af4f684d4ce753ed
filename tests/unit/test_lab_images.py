"""`lab image`: the phases built on this machine are the ones the boot server then finds cached."""

from __future__ import annotations

from testlib import example_pillar

import hpc_image_build as build
import hpc_pillar
from hpclab import images


def _plan(env, site):
    spec = hpc_pillar.load(example_pillar())["diskless"]
    image = build.image_named(spec.images, "compute")
    return build.prepare(image, spec.mirror, build.Store(site / "store"), images.BUILTIN, site, env)[0]


def test_the_mirror_phases_built_here_have_the_boot_servers_keys(tmp_path):
    here = {"HPCNET_PYTHON_REQUIREMENTS": "salt==3008.3"}
    server = {**here, "HPCNET_MASTER": "10.11.0.1", "HPCNET_MASTER_FINGER": "aa:bb"}
    built = images.local_phases(_plan(here, tmp_path), here)
    assert [p.name for p in built] == ["base", "install", "packages", "post-install"]
    assert [p.key for p in built] == [p.key for p in _plan(server, tmp_path).phases[:4]]
    # The master is configure's alone: another one changes that phase's key only.
    other = _plan({**server, "HPCNET_MASTER": "10.11.0.2"}, tmp_path)
    assert [p.key for p in other.phases[:4]] == [p.key for p in built]
    assert other.phases[4].key != _plan(server, tmp_path).phases[4].key
