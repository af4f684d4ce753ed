"""Events whose sender the master can prove: signed by the minion's own key, checked against the
key the master accepted for that minion.

Why: the master fires an event sent in the batch form of ``_minion_event`` (an ``events`` list)
with the payload exactly as the minion wrote it, so ``data['id']`` in a reactor is whatever the
sender put there (measured in the lab: labcn2 made the master heal labcn1). Salt 3008's fix for
forged events (CVE-2025-22239) only blacklists tags such as ``salt/job/...``. So our beacons sign
what they send, whatever path it takes, and our reactions act only on a verified signer:

    payload[AUTH] = {"minion": id, "time": t, "nonce": n, "sig": base64(RSA-PKCS1v15-SHA256(
                     canonical(tag, payload without AUTH, id, t, n)))}

The signer's key is the minion's ``<pki_dir>/minion.pem``; the verifier reads
``<master pki_dir>/minions/<id>`` (accepted keys only: a pending or rejected minion proves
nothing). A claim older or newer than ``WINDOW`` seconds, or a nonce seen before, is refused
(replays). Pure apart from reading keys and the clock; the nonce memory lives in this module
(the reactor re-creates its runner loader every minute, this module stays).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

if __name__.startswith("salt.loaded."):  # Salt's own __utils__ loader: skipped quietly (docs/core.md, 5)
    raise ImportError("an hpc helper, imported through hpc_synced")

AUTH = "hpc_auth"
# Where the master records an event or key it refused (the reactions in _runners/ fire it).
REJECTED = "hpc/security/rejected"
WINDOW = 30.0  # seconds either side of the master's clock (the cluster runs NTP)
MINION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # no path out of minions/


def canonical(tag: str, payload: dict[str, Any], minion: str, when: float, nonce: str) -> bytes:
    """What is signed. Keys starting with ``_`` are Salt's (the master stamps ``_stamp`` into a
    batch-form payload, jobs add ``__pub_*``): never ours, so left out on both sides."""
    body = {k: v for k, v in payload.items() if k != AUTH and not k.startswith("_")}
    text = json.dumps({"tag": tag, "data": body, "minion": minion, "time": when, "nonce": nonce},
                      sort_keys=True, separators=(",", ":"), default=str)
    return text.encode()


_KEYS: dict[tuple[str, float], Any] = {}  # (path, mtime) -> loaded key: a rotated key is read again


def _key(path: str, private: bool) -> Any:
    cache_key = (path, os.path.getmtime(path))
    if cache_key not in _KEYS:
        with open(path, "rb") as fh:
            pem = fh.read()
        _KEYS[cache_key] = (serialization.load_pem_private_key(pem, password=None) if private
                            else serialization.load_pem_public_key(pem))
    return _KEYS[cache_key]


def sign(opts: dict[str, Any], tag: str, payload: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """``payload`` with its AUTH block, signed by this minion's key (``opts``: the minion's)."""
    minion, when, nonce = opts["id"], time.time() if now is None else now, secrets.token_hex(8)
    key = _key(os.path.join(opts["pki_dir"], "minion.pem"), private=True)
    sig = key.sign(canonical(tag, payload, minion, when, nonce), padding.PKCS1v15(), hashes.SHA256())
    auth = {"minion": minion, "time": when, "nonce": nonce, "sig": base64.b64encode(sig).decode()}
    return {**payload, AUTH: auth}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    minion: str | None  # the proven signer when ok; else the claimed one, if any
    reason: str
    sender: str | None = None  # who the master says sent it (single form only), for the record


def payload_of(data: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(our payload, master-set sender) from what a reactor sees: the single form wraps the payload
    in ``data`` beside the ``id`` the master authenticated; the batch form is the payload itself
    (any ``id`` in it is the sender's word, so None)."""
    if isinstance(data.get("data"), dict) and data.get("cmd") == "_minion_event":
        return data["data"], data.get("id")
    return data, None


class Verifier:
    """Checks signed payloads against the master's accepted keys; remembers nonces for a window."""

    def __init__(self, pki_dir: str, window: float = WINDOW) -> None:
        self.pki_dir, self.window = pki_dir, window
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()

    def verify(self, tag: str, data: dict[str, Any], now: float | None = None) -> Verdict:
        now = time.time() if now is None else now
        payload, sender = payload_of(data)
        auth = payload.get(AUTH)
        if not isinstance(auth, dict):
            return Verdict(False, None, "unsigned", sender)
        minion = auth.get("minion")
        if not isinstance(minion, str) or not MINION_ID.match(minion):
            return Verdict(False, None, f"bad signer id {minion!r}", sender)
        reason = self._check(tag, payload, auth, minion, now)
        if reason is None and sender is not None and sender != minion:
            reason = f"signed by {minion} but sent by {sender}"
        return Verdict(reason is None, minion, reason or "verified", sender)

    def _check(self, tag: str, payload: dict[str, Any], auth: dict[str, Any], minion: str, now: float) -> str | None:
        when, nonce = auth.get("time"), auth.get("nonce")
        if not isinstance(when, int | float) or abs(now - when) > self.window:
            return f"stale or future claim (time {when!r}, window {self.window:g} s)"
        path = os.path.join(self.pki_dir, "minions", minion)
        try:
            key = _key(path, private=False)
            key.verify(base64.b64decode(auth.get("sig", "")), canonical(tag, payload, minion, when, str(nonce)),
                       padding.PKCS1v15(), hashes.SHA256())
        except FileNotFoundError:
            return f"no accepted key for {minion}"
        except (InvalidSignature, ValueError, TypeError):
            return f"bad signature for {minion}"
        return self._fresh(f"{minion}:{nonce}", now)

    def _fresh(self, nonce: str, now: float) -> str | None:
        with self.lock:
            for old in [n for n, t in self.seen.items() if now - t > 2 * self.window]:
                del self.seen[old]
            if nonce in self.seen:
                return "replayed (nonce seen before)"
            self.seen[nonce] = now
        return None


_VERIFIERS: dict[tuple[str, float], Verifier] = {}


def verifier(pki_dir: str, window: float = WINDOW) -> Verifier:
    """One verifier (one nonce memory) per master pki_dir, for the life of the process."""
    return _VERIFIERS.setdefault((pki_dir, window), Verifier(pki_dir, window))
