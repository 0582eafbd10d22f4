"""Writes relay_session.json beside this file: the Pigeon app's relay frames, in order.

Independent of `pigeon.relay`: the texts are spelled out from the app's sources
(isaiah-harville/Pigeon at APP_COMMIT), with pynacl for the signature, hashlib for our envelope
id and the stdlib's json for the compact serde layout (`type` first, fields in declared order,
no spaces). The relay under test gets the fixed nonce and clock below, so every frame is fixed;
rerunning this script must change nothing (a test checks that).
Run: .venv/bin/python tests/pigeon_app/vectors/make_relay_session.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import nacl.signing

HERE = Path(__file__).resolve().parent
APP_COMMIT = "ef7dc11968a6def37c228cb60a5c237a01ea6ff2"
REPO = "isaiah-harville/Pigeon"
SEED = bytes(range(32, 64))  # bob, as in identity.json
NONCE = bytes(range(0xA0, 0xC0))
CLOCK_S = 1_786_000_000
# packets.json, "fresh from its originator (TTL 8)": a whole app mesh packet.
PACKET = bytes.fromhex("010800112233445566778899aabbccddeeff63617272696572")


def text(**fields: Any) -> str:
    return json.dumps(fields, separators=(",", ":"))


def client(frame: str, source: str) -> dict[str, str]:
    return {"from": "client", "text": frame, "source": source}


def relay(frame: str, source: str) -> dict[str, str]:
    return {"from": "relay", "text": frame, "source": source}


def silence(source: str) -> dict[str, str]:
    return {"from": "relay", "text": "", "source": source}


def build() -> dict[str, Any]:
    key = nacl.signing.SigningKey(SEED)
    mailbox = bytes(key.verify_key).hex()
    ciphertext = base64.b64encode(PACKET).decode()
    envelope_id = hashlib.sha256(PACKET).digest()[:16].hex()
    nonce = base64.b64encode(NONCE).decode()
    signature = base64.b64encode(key.sign(NONCE).signature).decode()
    wrong = base64.b64encode(key.sign(bytes(32)).signature).decode()
    proto = "pigeon-relay/src/protocol.rs"
    conn = "pigeon-relay/src/connection.rs"
    mbox = "pigeon-relay/src/mailbox.rs"
    swift = "Pigeon/Pigeon/Core/Transport/RelayTransport.swift"
    sender = [
        client(
            text(type="publish", recipient=mailbox, ciphertext=ciphertext),
            f"{swift}:502-507 (hex recipient, base64 of the whole packet); {proto}:16-19",
        ),
        relay(
            text(type="published", id=envelope_id),
            f"{mbox}:89, {proto}:49-50; the id is ours (SHA-256 of the bytes, 16 bytes, hex) "
            f"where {mbox}:44 counts",
        ),
        client(text(type="subscribe", mailbox="dead"), f"{proto}:22"),
        relay(text(type="error", message="invalid mailbox"), f"{conn}:77-81"),
        client(text(type="auth", signature=signature), f"{proto}:25"),
        relay(text(type="error", message="subscribe first"), f"{conn}:91-95"),
        client(text(type="ack", id=envelope_id), f"{proto}:27"),
        relay(text(type="error", message="not authenticated"), f"{conn}:125-127"),
        client('{"type":"publish"}', f"{conn}:62-66 (serde: missing fields)"),
        relay(text(type="error", message="malformed message"), f"{conn}:62-66"),
    ]
    reader = [
        client(text(type="subscribe", mailbox=mailbox), f"{swift}:222"),
        relay(text(type="challenge", nonce=nonce), f"{conn}:83-88, {proto}:41-42 (32 bytes)"),
        client(text(type="auth", signature=wrong), f"{swift}:227-229; signed the wrong bytes"),
        relay(text(type="error", message="authentication failed"), f"{conn}:115-118"),
        client(text(type="subscribe", mailbox=mailbox), f"{swift}:222"),
        relay(text(type="challenge", nonce=nonce), f"{conn}:83-88"),
        client(
            text(type="auth", signature=signature),
            f"{swift}:227-229 (Ed25519 over the raw nonce), {mbox}:192-212 (verify_strict)",
        ),
        relay(text(type="ok", detail="authenticated"), f"{conn}:111-113; {swift}:230-231"),
        relay(
            text(type="envelope", id=envelope_id, ciphertext=ciphertext, ts=CLOCK_S),
            f"{conn}:114, {mbox}:164-175 (queue flushed after ok), {proto}:43-48",
        ),
        client(text(type="register_push", token="aabbccdd"), f"{swift}:234-236"),
        relay(text(type="error", message="push not supported"), f"{mbox}:107-111"),
        client(text(type="unregister_push", token="aabbccdd"), f"{swift}:461"),
        relay(text(type="ok", detail="push unregistered"), f"{conn}:133-138"),
        client(text(type="ack", id=envelope_id), f"{swift}:271-273"),
        silence(f"{conn}:121-124: an ack is answered with nothing"),
    ]
    after_ack = [
        client(text(type="subscribe", mailbox=mailbox), f"{swift}:222"),
        relay(text(type="challenge", nonce=nonce), f"{conn}:83-88"),
        client(text(type="auth", signature=signature), f"{swift}:229"),
        relay(text(type="ok", detail="authenticated"), f"{conn}:111-113"),
        silence(f"{mbox}:177-179, state.rs:184-190: the acked envelope is gone"),
    ]
    return {
        "about": {
            "repository": REPO,
            "commit": APP_COMMIT,
            "note": (
                "JSON text frames of three connections to /ws, in order; 'text' is exact; "
                "an empty relay text means the relay sends nothing. The relay under test uses "
                "the nonce and clock below. Written by make_relay_session.py, not by our codec."
            ),
        },
        "inputs": {
            "signing_seed_hex": SEED.hex(),
            "nonce_hex": NONCE.hex(),
            "clock_s": CLOCK_S,
            "packet_hex": PACKET.hex(),
        },
        "connections": [sender, reader, after_ack],
    }


def main() -> int:
    (HERE / "relay_session.json").write_text(json.dumps(build(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
