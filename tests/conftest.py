"""Fixtures shared by every tier."""

from __future__ import annotations

import pytest
from testlib import example_pillar


@pytest.fixture
def pillar() -> dict:
    return example_pillar()
