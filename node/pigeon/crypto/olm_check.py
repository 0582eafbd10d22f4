"""Self-checks of the Olm layer for `pigeon selftest`.

`check_signatures` signs an identity binding and a one-time prekey from a fixed seed and fixed
keys (Ed25519 is deterministic) and compares the SHA-256 of both bundles with a pinned answer
(pinned from this code; tests/crypto/test_app_vectors.py proves the same functions against the
app's published vectors), then verifies them. `check_round_trip` opens a pre-key session
between two fresh accounts, answers it and reads a message each way (vodozemac draws its own
randomness, so there is no fixed answer: it proves the library loads and works here).
Each check returns on success and raises otherwise.
"""

from __future__ import annotations

import hashlib
from typing import Final

from pigeon.crypto.app_bundle import AppIdentityBundle, AppPrekeyBundle
from pigeon.crypto.errors import DecryptFailed
from pigeon.crypto.olm_account import OlmAccount
from pigeon.crypto.olm_session import OlmSession
from pigeon.crypto.signing import SigningKey

_PINNED_BUNDLES: Final = bytes.fromhex(
    "a0967a923b70c13a8dad4920e646515893134060cd8994641e56dd3b4c7037dc"
)
_NOW: Final = 1_800_000_000.0


def check_signatures() -> None:
    """The binding and prekey signatures of a fixed seed, against the pinned answer."""
    key = SigningKey(bytes(range(32)))
    bundle = AppIdentityBundle.sign(key, bytes(range(32, 64)))
    prekey = AppPrekeyBundle.sign(key, bundle, bytes(range(64, 96)), one_time=True)
    digest = hashlib.sha256(bundle.to_bytes() + prekey.to_bytes()).digest()
    if digest != _PINNED_BUNDLES:
        raise DecryptFailed("the Olm bundles differ from the known answer")
    prekey.verify()


def check_round_trip() -> None:
    """A pre-key session opened, answered and used both ways between two fresh accounts."""
    alice = OlmAccount.create(SigningKey.generate(), _NOW)
    bob = OlmAccount.create(SigningKey.generate(), _NOW)
    opener = OlmSession.outbound(alice, bob.fallback_prekey_bundle())
    answerer, first = OlmSession.inbound(
        bob, alice.identity_bundle(), opener.encrypt_message(b"first")
    )
    reply = opener.decrypt_message(answerer.encrypt_message(b"reply"))
    if (first, reply) != (b"first", b"reply"):
        raise DecryptFailed("an Olm round trip did not give back its plaintexts")
