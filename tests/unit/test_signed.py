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


def gathered(arrivals: list[float], quiet: float, cap: float) -> list[list[str]]:
    """The batches hpc_batch makes of reactions arriving at these times (seconds from now)."""
    results, start = [], time.monotonic()

    def react(i: int, at: float) -> None:
        time.sleep(max(0.0, start + at - time.monotonic()))
        results.append(hpc_batch.gather("heal", f"labcn{i}", quiet, cap))

    threads = [threading.Thread(target=react, args=(i, at)) for i, at in enumerate(arrivals)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for r in results if r is not None]


def test_a_storm_gathers_into_one_batch():
    batches = gathered([0.0] * 30, quiet=0.05, cap=0.5)
    assert len(batches) == 1 and len(batches[0]) == 30


def test_a_storm_that_trickles_in_is_still_one_batch():
    """30 link-ups 20 ms apart (0.58 s in all) with a 50 ms quiet gap: one job, not 30."""
    batches = gathered([i * 0.02 for i in range(30)], quiet=0.05, cap=1.0)
    assert [len(b) for b in batches] == [30]


def test_a_batch_closes_after_a_quiet_gap_or_at_its_cap():
    assert [len(b) for b in gathered([0.0, 0.01, 0.3, 0.31], quiet=0.05, cap=1.0)] == [2, 2]
    endless = gathered([i * 0.02 for i in range(40)], quiet=0.05, cap=0.3)  # 0.78 s, no gap
    assert len(endless) >= 2 and sum(map(len, endless)) == 40
