"""What a diskless node's /opt/salt gets (hpc_image_build.node_requirements): the builder's own
Salt environment, every package pinned, installed with ``pip install --no-deps`` by the image's
post-install phase, so nothing may be missing from the list and nothing needing a compiler in it."""

from __future__ import annotations

import importlib.metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import hpc_image_build


def _pinned() -> dict[str, str]:
    return dict(req.split("==", 1) for req in hpc_image_build.node_requirements().split())


def test_every_package_and_what_it_requires_is_pinned_at_the_builders_version():
    pinned = _pinned()
    for name in ("salt", "netaddr", "pydantic", "pyroute2", "ClusterShell"):
        assert pinned[name] == importlib.metadata.version(name)
    # Required through others, never named by us: pydantic's core, Salt's transport and crypto.
    assert {"pydantic_core", "pyzmq", "msgpack", "cryptography", "tornado", "Jinja2"} <= set(pinned)
    assert pinned["pyzmq"] == importlib.metadata.version("pyzmq")


def test_the_list_is_closed_under_requirements_but_for_timelib():
    pinned = {canonicalize_name(name) for name in _pinned()}
    assert "timelib" not in pinned  # source only: it would need a compiler in the image
    for name in _pinned():
        for text in importlib.metadata.distribution(name).requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                assert canonicalize_name(req.name) in pinned | {"timelib"}, f"{name} requires {req.name}"
