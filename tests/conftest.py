"""Fixtures shared by every tier."""

from __future__ import annotations

import pytest
from testlib import example_pillar

import hpc_synced  # noqa: F401 - first, so its finder has seen every helper the tests import (see hpc_synced)


@pytest.fixture
def pillar() -> dict:
    return example_pillar()
