"""``salt-run diskless.auth``, the master's answer to Salt's ``salt/auth`` events for diskless
nodes, against Salt's real key store (salt.key over a temporary master's pki cache) and the
master's pillar cache holding the example pillar: a registered node's new key is accepted only by
its own name and boot MAC; a node that booted again gets its new key in place of the old one only
when the old key's holder does not answer; anything else is left as Salt put it."""

from __future__ import annotations

import threading

import pytest
import salt.cache
import salt.config
import salt.key
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from testlib import example_pillar, load_runner

CN1 = "labcn1 52:54:00:0b:00:41"  # the example inventory's labcn1 and its admin MAC


def _pub() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


OLD, NEW, OTHER = _pub(), _pub(), _pub()


class NullBus:
    def fire_event(self, data, tag):
        return True

    def destroy(self):
        pass


@pytest.fixture
def master(tmp_path, monkeypatch):
    (tmp_path / "master").write_text(f"root_dir: {tmp_path}\n")
    opts = salt.config.master_config(str(tmp_path / "master"))
    salt.cache.factory(opts).store("pillar", "labboot1", example_pillar())
    runner = load_runner("diskless", opts)
    fired, pinged = [], []
    monkeypatch.setattr(runner, "_fire", lambda tag, data: fired.append((tag, data)))
    alive: set[str] = set()

    class Client:
        def __init__(self, mopts=None, **kw):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def cmd(self, tgt, fun, tgt_type, timeout):
            """As Salt 3008's LocalClient.cmd: every targeted minion has an entry; one that did
            not answer has Salt's message (or False) instead of test.ping's True."""
            pinged.append(sorted(tgt))
            return {m: True if m in alive else "Minion did not return. [Not connected]" for m in tgt}

    monkeypatch.setattr(runner.salt.client, "LocalClient", Client)
    monkeypatch.setattr(salt.key.Key, "check_minion_cache", lambda self, preserve_minions=None: None)
    # No master runs here: Salt's key events (and the bus it would open for each) go nowhere.
    monkeypatch.setattr(salt.key.Key, "event", NullBus())
    runner._MEMO.clear()
    with salt.key.get_key(opts) as keys:
        yield {"runner": runner, "keys": keys, "fired": fired, "pinged": pinged, "alive": alive}


def _submit(master, minion, pub, state):
    """What Salt's master does with a key it did not accept (salt/master.py, _auth)."""
    cache = master["keys"].cache
    if state == "pending":
        cache.store("keys", minion, {"pub": pub, "state": "pending"})
    elif state == "accepted":
        cache.store("keys", minion, {"pub": pub, "state": "accepted"})
    else:
        cache.store("denied_keys", minion, [pub])


def _event(act, minion, pub, boot=CN1):
    return {"act": act, "id": minion, "pub": pub, "result": act != "denied",
            **({"autosign_grains": {"hpcnet_boot": boot}} if boot else {})}


def _state(master, minion):
    listed = master["keys"].list_keys()
    return sorted(state for state, ids in listed.items() if minion in ids)


def _auth(master, data):
    return master["runner"].auth("salt/auth", data, quiet=0.01, cap=0.1)


def test_a_registered_nodes_new_key_is_accepted(master):
    _submit(master, "labcn1", NEW, "pending")
    out = _auth(master, _event("pend", "labcn1", NEW))
    assert out["accepted"] == ["labcn1"], out
    assert _state(master, "labcn1") == ["minions"]


def test_a_boot_storms_keys_are_accepted_together(master):
    """Two nodes' keys within the gathering window: one batch accepts both."""
    _submit(master, "labcn1", NEW, "pending")
    _submit(master, "labcn2", OTHER, "pending")
    results = []
    events = [_event("pend", "labcn1", NEW), _event("pend", "labcn2", OTHER, "labcn2 52:54:00:0b:00:42")]
    threads = [threading.Thread(target=lambda e=e: results.append(
        master["runner"].auth("salt/auth", e, quiet=0.3, cap=1))) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.get("accepted") is not None for r in results) == [False, True], results
    assert next(r for r in results if "accepted" in r)["accepted"] == ["labcn1", "labcn2"]
    assert _state(master, "labcn1") == _state(master, "labcn2") == ["minions"]


@pytest.mark.parametrize(("minion", "boot", "why"), [
    ("labfe1", CN1, "names 'labcn1', but the key is for 'labfe1'"),  # a pending frontend's id
    ("labcn1", "labcn1 52:54:00:0b:00:99", "no registered diskless node"),
    ("labcn9", "labcn9 52:54:00:0b:00:49", "no registered diskless node"),
])
def test_a_key_that_claims_a_diskless_identity_it_has_not_stays_pending_and_is_recorded(master, minion, boot, why):
    _submit(master, minion, NEW, "pending")
    out = _auth(master, _event("pend", minion, NEW, boot))
    assert out["acted"] is False and why in out["reason"], out
    assert _state(master, minion) == ["minions_pre"]
    assert [tag for tag, _ in master["fired"]] == ["hpc/security/rejected"]


def test_a_key_that_claims_nothing_is_the_admins_business(master):
    _submit(master, "labfe1", NEW, "pending")
    out = _auth(master, _event("pend", "labfe1", NEW, boot=None))
    assert out["acted"] is False and _state(master, "labfe1") == ["minions_pre"] and master["fired"] == []


def test_only_the_key_salt_holds_is_acted_on(master):
    """A forged event naming a key nobody submitted accepts nothing."""
    _submit(master, "labcn1", NEW, "pending")
    out = _auth(master, _event("pend", "labcn1", OTHER))
    assert out["acted"] is False and _state(master, "labcn1") == ["minions_pre"]


def test_a_node_that_booted_again_gets_its_new_key_once_the_old_one_is_silent(master):
    _submit(master, "labcn1", OLD, "accepted")
    _submit(master, "labcn1", NEW, "denied")
    out = _auth(master, _event("denied", "labcn1", NEW))
    assert out["replaced"] == ["labcn1"] and master["pinged"] == [["labcn1"]], out
    assert _state(master, "labcn1") == []  # its next authentication pends, and is accepted:
    _submit(master, "labcn1", NEW, "pending")
    assert _auth(master, _event("pend", "labcn1", NEW))["accepted"] == ["labcn1"]
    assert master["keys"].key_str("labcn1")["minions"]["labcn1"] == NEW


def test_a_running_nodes_key_is_never_taken_over(master):
    _submit(master, "labcn1", OLD, "accepted")
    _submit(master, "labcn1", NEW, "denied")
    master["alive"].add("labcn1")
    out = _auth(master, _event("denied", "labcn1", NEW))
    assert out["replaced"] == [] and out["kept"] == ["labcn1"], out
    assert master["keys"].key_str("labcn1")["minions"]["labcn1"] == OLD
    assert [tag for tag, _ in master["fired"]] == ["hpc/security/rejected"]
