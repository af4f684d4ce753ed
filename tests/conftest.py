"""Fixtures shared by every tier."""

from __future__ import annotations

import sys

import pytest
from testlib import example_pillar  # puts _utils on sys.path; imports no helper

import hpc_synced  # before any helper: its finder must see every helper the tests import (see hpc_synced)

sys.modules.setdefault("_hpc_synced", hpc_synced)  # what _beacons/_hpc_synced.py stands for in a minion


@pytest.fixture
def pillar() -> dict:
    return example_pillar()
