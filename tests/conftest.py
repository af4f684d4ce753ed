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


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    """Two minions' key pairs as Salt lays them out: each minion's ``<pki>/minion.pem`` (opts for
    hpc_signed.sign) and the master's ``<pki>/minions/<id>`` (accepted public keys)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    root = tmp_path_factory.mktemp("pki")
    (root / "master" / "minions").mkdir(parents=True)
    opts = {}
    for minion in ("labcn1", "labcn2"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pki = root / minion
        pki.mkdir()
        (pki / "minion.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
        (root / "master" / "minions" / minion).write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        opts[minion] = {"id": minion, "pki_dir": str(pki)}
    return {"opts": opts, "master_pki": str(root / "master")}
