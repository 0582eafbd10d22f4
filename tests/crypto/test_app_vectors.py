"""Known answers from tests/pigeon_app/vectors/ (written from the app's sources, not our code)."""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from pigeon.crypto.app_bundle import AppIdentityBundle, AppPrekeyBundle
from pigeon.crypto.app_card import AppContactCard
from pigeon.crypto.app_plaintext import (
    ESTABLISHMENT_ACK,
    AppMessage,
    EphemeralControl,
    ReactionControl,
    TransportControl,
    decode_ack,
    decode_app_message,
    decode_control,
    encode_ack,
    encode_app_message,
    encode_control,
)
from pigeon.crypto.app_safety import app_safety_number, format_app_safety_number
from pigeon.crypto.olm_session import ESTABLISHMENT_HELLO
from pigeon.crypto.signing import SigningKey

VECTORS = Path(__file__).resolve().parent.parent / "pigeon_app" / "vectors"
SEEDS = {"alice": bytes(range(32)), "bob": bytes(range(32, 64))}


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def test_the_vector_files_are_what_their_generator_writes() -> None:
    path = VECTORS / "make_app_crypto_vectors.py"
    spec = importlib.util.spec_from_file_location("make_app_crypto_vectors", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, text in module.render().items():
        assert (VECTORS / name).read_text(encoding="utf-8") == text, name
        assert all(s["lines"] and s["file"] for s in json.loads(text)["sources"])


@pytest.mark.parametrize("case", _load("identity.json")["cases"], ids=lambda c: c["name"])
def test_identity_and_prekey_bundles(case: dict[str, Any]) -> None:
    signer = SigningKey(bytes.fromhex(case["ed25519_seed"]))
    curve = bytes.fromhex(case["curve25519_identity_public"])
    bundle = AppIdentityBundle.sign(signer, curve)
    assert bundle.to_bytes().hex() == case["identity_bundle"]
    assert len(bundle.to_bytes()) == case["identity_bundle_len"] == 134
    assert AppIdentityBundle.parse_verified(bundle.to_bytes()) == bundle
    for which, one_time in (("fallback", False), ("one_time", True)):
        prekey = bytes.fromhex(case[f"{which}_prekey_public"])
        signed = AppPrekeyBundle.sign(signer, bundle, prekey, one_time=one_time)
        assert signed.prekey_signature.hex() == case[f"{which}_prekey_signature"]
        assert signed.to_bytes().hex() == case[f"{which}_prekey_bundle"]
        assert AppPrekeyBundle.parse_verified(signed.to_bytes()) == signed


@pytest.mark.parametrize("case", _load("card.json")["cases"], ids=lambda c: c["label"])
def test_contact_cards(case: dict[str, Any]) -> None:
    for form in (case["text"], case["link"], "  " + case["text"] + "\n"):
        card = AppContactCard.from_text(form)
        assert card.name == case["name"]
        assert list(card.relay_urls) == case["honoured_relay_urls"]
        assert card.relays_dropped == (case["relay_urls"] != case["honoured_relay_urls"])
        assert card.prekey_bundle is not None
        assert card.prekey_bundle.to_bytes().hex() == case["honoured_prekey_bundle"]
    if case["relay_signer"] != case["identity"]:
        return
    signer = SigningKey(SEEDS[case["identity"]])
    parsed = AppContactCard.from_bytes(bytes.fromhex(case["card"]))
    built = AppContactCard.build(
        signer, parsed.identity, case["name"], case["relay_urls"], parsed.prekey_bundle
    )
    assert built.to_bytes().hex() == case["card"]
    assert built.to_text() == case["text"]
    assert built.to_link() == case["link"]


@pytest.mark.parametrize("case", _load("safety_number.json")["cases"])
def test_safety_numbers(case: dict[str, Any]) -> None:
    a, b = bytes.fromhex(case["key_a"]), bytes.fromhex(case["key_b"])
    assert app_safety_number(a, b) == app_safety_number(b, a) == case["digits"]
    if "display" in case:
        assert format_app_safety_number(case["digits"]) == case["display"]


def test_app_messages_acks_and_controls() -> None:
    vectors = _load("app_message.json")
    for case in vectors["messages"]:
        message = AppMessage(
            uuid.UUID(case["id"]), case["text"], case["reply_snippet"], case["sent_at_unix_s"]
        )
        encoded = case["json"].encode("utf-8")
        assert encode_app_message(message) == encoded
        assert decode_app_message(encoded, arrived_at_unix_s=2e9) == message
    assert ESTABLISHMENT_HELLO.hex() == vectors["first_plaintext"]
    assert ESTABLISHMENT_ACK.hex() == vectors["establishment_ack"]
    message_id = uuid.UUID(vectors["messages"][0]["id"])
    assert encode_ack(message_id).hex() == vectors["message_ack"]
    assert decode_ack(bytes.fromhex(vectors["message_ack"])).message_id == message_id
    assert decode_ack(ESTABLISHMENT_ACK).message_id is None
    expected = [
        EphemeralControl(True),
        TransportControl(False),
        ReactionControl(message_id, "👍"),
        ReactionControl(message_id, None),
    ]
    for case, control in zip(vectors["controls"], expected, strict=True):
        assert encode_control(control).hex() == case["bytes"]
        assert decode_control(bytes.fromhex(case["bytes"])) == control
