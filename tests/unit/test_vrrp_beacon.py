"""The hpc_vrrp beacon reads the states keepalived's notify hook wrote and reports each change once."""

from __future__ import annotations

import importlib.util

from testlib import ROOT

import hpc_signed

spec = importlib.util.spec_from_file_location("hpc_vrrp", ROOT / "_beacons" / "hpc_vrrp.py")
beacon = importlib.util.module_from_spec(spec)
spec.loader.exec_module(beacon)


def test_each_transition_fires_once_signed(tmp_path, keys):
    sent, payloads = [], []
    beacon.__salt__ = {"event.send": lambda tag, data: (sent.append(tag), payloads.append(data))}
    beacon.__opts__ = keys["opts"]["labcn1"]
    beacon._SEEN.clear()
    (tmp_path / "nat_gw").write_text("MASTER 150\n")
    config = [{"directory": str(tmp_path)}]
    assert [e["tag"] for e in beacon.beacon(config)] == ["nat_gw/MASTER"]
    assert beacon.beacon(config) == []
    (tmp_path / "nat_gw").write_text("BACKUP 150\n")
    (tmp_path / ".nat_gw").write_text("FAULT 150\n")  # the hook's temporary file is not a state
    assert [e["tag"] for e in beacon.beacon(config)] == ["nat_gw/BACKUP"]
    assert sent == ["hpc/net/vrrp/nat_gw/MASTER", "hpc/net/vrrp/nat_gw/BACKUP"]
    verifier = hpc_signed.Verifier(keys["master_pki"])
    assert all(verifier.verify(tag, data).minion == "labcn1" for tag, data in zip(sent, payloads, strict=True))
