"""Writes identity.json, card.json, safety_number.json and app_message.json beside this file.

Independent of `pigeon.crypto`: pynacl, hashlib and byte layouts spelled out from the app's
sources (isaiah-harville/Pigeon at APP_COMMIT), so the tests that read these files check our
modules against the sources, not against themselves. Ed25519 is deterministic, so fixed seeds
give fixed bytes; rerunning this script must change nothing (a test checks that).
Run: .venv/bin/python tests/pigeon_app/vectors/make_app_crypto_vectors.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import uuid
from pathlib import Path

import nacl.bindings
import nacl.signing

HERE = Path(__file__).resolve().parent
APP_COMMIT = "ef7dc11968a6def37c228cb60a5c237a01ea6ff2"
REPO = "isaiah-harville/Pigeon"
SEEDS = {"alice": bytes(range(32)), "bob": bytes(range(32, 64))}
CURVE_SECRETS = {"alice": bytes([0x11]) * 32, "bob": bytes([0x22]) * 32}
PREKEY_SECRETS = {"fallback": bytes([0x33]) * 32, "one_time": bytes([0x44]) * 32}


def source(path: str, lines: str) -> dict[str, str]:
    return {"repository": REPO, "commit": APP_COMMIT, "file": path, "lines": lines}


def delimited(key: int, value: bytes) -> bytes:
    assert len(value) < 16384
    length = (
        bytes([len(value)])
        if len(value) < 128
        else bytes([len(value) & 0x7F | 0x80, len(value) >> 7])
    )
    return bytes([key]) + length + value


def curve_public(secret: bytes) -> bytes:
    return nacl.bindings.crypto_scalarmult_base(secret)


def identity_bundle(name: str) -> tuple[bytes, bytes]:
    signer = nacl.signing.SigningKey(SEEDS[name])
    curve = curve_public(CURVE_SECRETS[name])
    signature = signer.sign(b"Pigeon.IdentityBinding.v1" + curve).signature
    bundle = (
        delimited(0x0A, bytes(signer.verify_key))
        + delimited(0x12, curve)
        + delimited(0x1A, signature)
    )
    return bundle, signature


def prekey_bundle(name: str, which: str) -> tuple[bytes, bytes]:
    signer = nacl.signing.SigningKey(SEEDS[name])
    prekey = curve_public(PREKEY_SECRETS[which])
    one_time = which == "one_time"
    signature = signer.sign(b"Pigeon.Prekey.v1" + bytes([one_time]) + prekey).signature
    body = (
        delimited(0x0A, identity_bundle(name)[0])
        + delimited(0x12, prekey)
        + delimited(0x1A, signature)
    )
    return body + (b"\x20\x01" if one_time else b""), signature


def identity_vectors() -> dict[str, object]:
    cases = []
    for name in ("alice", "bob"):
        bundle, binding = identity_bundle(name)
        case: dict[str, object] = {
            "name": name,
            "ed25519_seed": SEEDS[name].hex(),
            "ed25519_public": bytes(nacl.signing.SigningKey(SEEDS[name]).verify_key).hex(),
            "curve25519_identity_public": curve_public(CURVE_SECRETS[name]).hex(),
            "binding_signature": binding.hex(),
            "identity_bundle": bundle.hex(),
            "identity_bundle_len": len(bundle),
        }
        for which in ("fallback", "one_time"):
            encoded, signature = prekey_bundle(name, which)
            case[f"{which}_prekey_public"] = curve_public(PREKEY_SECRETS[which]).hex()
            case[f"{which}_prekey_signature"] = signature.hex()
            case[f"{which}_prekey_bundle"] = encoded.hex()
        cases.append(case)
    return {
        "what": "IdentityBundle and PrekeyBundle protobuf bytes and their Ed25519 signatures",
        "sources": [
            source("proto/pigeon/wire/v1/pigeon_wire.proto", "5-16"),
            source("pigeon-core/src/identity.rs", "14-33, 87-95"),
            source("pigeon-core/src/wire.rs", "16-70"),
        ],
        "binding_message": "'Pigeon.IdentityBinding.v1' || curve25519_identity_public",
        "prekey_message": "'Pigeon.Prekey.v1' || one_time (one byte, 0 or 1) || prekey",
        "cases": cases,
    }


def card_bytes(name: str, display: str, urls: list[str], prekey: bool, signer_name: str) -> bytes:
    signer = nacl.signing.SigningKey(SEEDS[signer_name])
    relay_signature = signer.sign("\n".join(urls).encode()).signature
    body = b"\x08\x03" + delimited(0x12, identity_bundle(name)[0])
    body += delimited(0x1A, display.encode()) if display else b""
    body += b"".join(delimited(0x22, url.encode()) for url in urls)
    body += delimited(0x2A, relay_signature)
    body += delimited(0x32, prekey_bundle(name, "fallback")[0]) if prekey else b""
    return body


def card_case(
    label: str, name: str, display: str, urls: list[str], *, signer: str, honoured: bool
) -> dict[str, object]:
    raw = card_bytes(name, display, urls, True, signer)
    text = base64.b64encode(raw).decode()
    link = "pigeon://contact?card=" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return {
        "label": label,
        "identity": name,
        "name": display,
        "relay_urls": urls,
        "relay_signer": signer,
        "card": raw.hex(),
        "text": text,
        "link": link,
        "honoured_relay_urls": urls if honoured else [],
        "honoured_prekey_bundle": prekey_bundle(name, "fallback")[0].hex(),
    }


def card_vectors() -> dict[str, object]:
    return {
        "what": "ContactCard v3: protobuf, its standard-base64 text and its pigeon:// link",
        "sources": [
            source("proto/pigeon/wire/v1/pigeon_wire.proto", "50-57"),
            source("Pigeon/Pigeon/Core/Contacts/ContactCard.swift", "31-33, 46-72, 74-146"),
            source("Pigeon/Pigeon/Core/Session/SessionManager+UI.swift", "126-140"),
        ],
        "relay_signature": "Ed25519 by the identity key over the URLs joined by '\\n', no prefix",
        "cases": [
            card_case(
                "signed relays",
                "alice",
                "Alice",
                ["wss://relay.pigeonwire.app/ws", "wss://b.example/ws"],
                signer="alice",
                honoured=True,
            ),
            card_case(
                "no relays, signature over nothing",
                "bob",
                "Bøb 🐦",
                [],
                signer="bob",
                honoured=True,
            ),
            card_case(
                "relays signed by another identity are dropped",
                "alice",
                "Alice",
                ["wss://evil.example/ws"],
                signer="bob",
                honoured=False,
            ),
        ],
    }


def key_digits(key: bytes) -> str:
    context = b"Pigeon.SafetyNumber.v1"
    current = context + key
    for _ in range(5200):
        current = hashlib.sha512(current + context + key).digest()
    return "".join(
        f"{int.from_bytes(current[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5)
    )


def safety_vectors() -> dict[str, object]:
    keys = {name: bytes(nacl.signing.SigningKey(seed).verify_key) for name, seed in SEEDS.items()}
    first, second = sorted(keys.values())
    digits = key_digits(first) + key_digits(second)
    return {
        "what": "the app's 60-digit safety number of two Ed25519 identity keys",
        "sources": [
            source("Pigeon/Pigeon/Core/Identity/SafetyNumber.swift", "28-99"),
            source("Pigeon/PigeonTests/SafetyNumberTests.swift", "44-78"),
        ],
        "cases": [
            {
                "key_a": keys["alice"].hex(),
                "key_b": keys["bob"].hex(),
                "digits": digits,
                "display": " ".join(digits[i : i + 5] for i in range(0, 60, 5)),
            },
            {
                "key_a": (bytes(31) + b"\x01").hex(),
                "key_b": (b"\xff" * 32).hex(),
                "digits": key_digits(bytes(31) + b"\x01") + key_digits(b"\xff" * 32),
            },
        ],
    }


def app_message_vectors() -> dict[str, object]:
    message_id = uuid.UUID("e621e1f8-c36c-495a-93fc-0c247a3e6e5f")
    reference = 978307200
    return {
        "what": "plaintexts inside Olm messages: JSON app message, acks, control commands",
        "sources": [
            source("Pigeon/Pigeon/Core/Session/SessionManager+MessageCodec.swift", "19-53"),
            source(
                "Pigeon/Pigeon/Core/Session/SessionManager+Messaging.swift",
                "131-154, 197-227, 354-357",
            ),
            source("Pigeon/Pigeon/Core/Session/SessionManager.swift", "402-411"),
            source("Pigeon/Pigeon/Core/Session/SessionManager+Reactions.swift", "47-65"),
        ],
        "date_encoding": (
            "Foundation JSONEncoder default (.deferredToDate):"
            " seconds since 2001-01-01T00:00:00Z as a number"
        ),
        "messages": [
            {
                "id": str(message_id).upper(),
                "text": 'see https://pigeonwire.app/ "now" ✓',
                "reply_snippet": "earlier line",
                "sent_at_unix_s": reference + 786000000.25,
                "json": (
                    '{"id":"E621E1F8-C36C-495A-93FC-0C247A3E6E5F",'
                    '"text":"see https:\\/\\/pigeonwire.app\\/ \\"now\\" ✓",'
                    '"replySnippet":"earlier line","sentAt":786000000.25}'
                ),
            },
            {
                "id": str(message_id).upper(),
                "text": "no reply",
                "reply_snippet": None,
                "sent_at_unix_s": reference + 786000000,
                "json": (
                    '{"id":"E621E1F8-C36C-495A-93FC-0C247A3E6E5F",'
                    '"text":"no reply","sentAt":786000000}'
                ),
            },
        ],
        "first_plaintext": "",
        "establishment_ack": "00",
        "message_ack": (str(message_id).upper()).encode().hex(),
        "controls": [
            {"what": "ephemeral on", "bytes": "0101"},
            {"what": "transport relay", "bytes": "0200"},
            {
                "what": "reaction",
                "message_id": str(message_id).upper(),
                "emoji": "👍",
                "bytes": (b"\x03" + str(message_id).upper().encode() + "👍".encode()).hex(),
            },
            {
                "what": "reaction removed",
                "message_id": str(message_id).upper(),
                "emoji": None,
                "bytes": (b"\x03" + str(message_id).upper().encode()).hex(),
            },
        ],
    }


FILES = {
    "identity.json": identity_vectors,
    "card.json": card_vectors,
    "safety_number.json": safety_vectors,
    "app_message.json": app_message_vectors,
}


def render() -> dict[str, str]:
    return {
        name: json.dumps(make(), indent=2, ensure_ascii=False) + "\n"
        for name, make in FILES.items()
    }


def main() -> None:
    for name, text in render().items():
        (HERE / name).write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {name}\n")


if __name__ == "__main__":
    main()
