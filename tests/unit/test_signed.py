"""Proof of sender for our events (hpc_signed): what the master accepts and what it refuses."""

from __future__ import annotations

import threading
import time

import hpc_batch
import hpc_signed

TAG = "hpc/net/link/ib0/up"


def single_form(sender, payload, tag=TAG):
    """What a reactor sees for ``fire_master(payload, tag)``: the master's wrapper and its ``id``."""
    return {"id": sender, "cmd": "_minion_event", "tag": tag, "data": payload, "_stamp": "2026-12-02T00:00:00"}


def batch_form(payload):
    """What a reactor sees for the batch form: the payload as the minion wrote it (+ the stamp)."""
    return {**payload, "_stamp": "2026-12-02T00:00:00"}


def test_a_signed_event_proves_its_minion_in_both_forms(keys):
    verifier = hpc_signed.Verifier(keys["master_pki"])
    signed = hpc_signed.sign(keys["opts"]["labcn1"], TAG, {"interface": "ib0", "state": "up"})
    verdict = verifier.verify(TAG, single_form("labcn1", signed))
    assert (verdict.ok, verdict.minion, verdict.sender) == (True, "labcn1", "labcn1")
    other = hpc_signed.sign(keys["opts"]["labcn1"], TAG, {"interface": "ib0", "state": "up"})
    assert verifier.verify(TAG, batch_form(other)).minion == "labcn1"


def test_the_batch_form_spoof_is_refused(keys):
    """labcn2 writes labcn1's id into an unsigned payload, or signs with its own key and claims labcn1."""
    verifier = hpc_signed.Verifier(keys["master_pki"])
    unsigned = verifier.verify(TAG, batch_form({"id": "labcn1", "interface": "ib0", "state": "up"}))
    assert (unsigned.ok, unsigned.reason) == (False, "unsigned")
    forged = hpc_signed.sign(keys["opts"]["labcn2"], TAG, {"interface": "ib0"})
    forged["hpc_auth"]["minion"] = "labcn1"
    verdict = verifier.verify(TAG, batch_form(forged))
    assert (verdict.ok, verdict.reason) == (False, "bad signature for labcn1")


def test_a_signed_payload_sent_by_another_minion_names_the_real_sender(keys):
    verifier = hpc_signed.Verifier(keys["master_pki"])
    signed = hpc_signed.sign(keys["opts"]["labcn1"], TAG, {"interface": "ib0"})
    verdict = verifier.verify(TAG, single_form("labcn2", signed))
    assert not verdict.ok and verdict.reason == "signed by labcn1 but sent by labcn2" and verdict.sender == "labcn2"


def test_changed_tag_or_payload_breaks_the_signature(keys):
    verifier = hpc_signed.Verifier(keys["master_pki"])
    signed = hpc_signed.sign(keys["opts"]["labcn1"], TAG, {"interface": "ib0"})
    assert verifier.verify("hpc/net/link/ib1/up", batch_form(signed)).reason == "bad signature for labcn1"
    assert verifier.verify(TAG, batch_form({**signed, "interface": "ib1"})).reason == "bad signature for labcn1"


def test_replays_stale_claims_unknown_and_odd_ids_are_refused(keys):
    verifier = hpc_signed.Verifier(keys["master_pki"], window=30)
    signed = hpc_signed.sign(keys["opts"]["labcn1"], TAG, {"interface": "ib0"})
    assert verifier.verify(TAG, batch_form(signed)).ok
    assert verifier.verify(TAG, batch_form(signed)).reason == "replayed (nonce seen before)"
    old = hpc_signed.sign(keys["opts"]["labcn1"], TAG, {}, now=time.time() - 31)
    assert verifier.verify(TAG, batch_form(old)).reason.startswith("stale or future claim")
    unknown = hpc_signed.sign(dict(keys["opts"]["labcn1"], id="labcn9"), TAG, {})
    assert verifier.verify(TAG, batch_form(unknown)).reason == "no accepted key for labcn9"
    sneaky = hpc_signed.sign(dict(keys["opts"]["labcn1"], id="../minions/labcn1"), TAG, {})
    assert verifier.verify(TAG, batch_form(sneaky)).reason.startswith("bad signer id")


def test_a_storm_gathers_into_one_batch():
    results = []

    def react(minion):
        results.append(hpc_batch.gather("heal", minion, 0.2))

    threads = [threading.Thread(target=react, args=(f"labcn{i}",)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batches = [r for r in results if r is not None]
    assert len(batches) == 1 and len(batches[0]) == 30 and results.count(None) == 29
