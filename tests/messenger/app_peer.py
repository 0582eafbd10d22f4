"""A scripted Pigeon-app peer for the messenger tests: `PlainAppPeer` (vodozemac and pynacl
only) plus the app's envelope written out from the facts: `1 | type | sender | recipient |
payload`. It shares no code with `pigeon.appmesh` or `pigeon.crypto`."""

from __future__ import annotations

import json
import uuid

from tests.crypto.plain_app_peer import PlainAppPeer, prekey_bundle_of_link, read_fields

X3DH_INIT, MESSAGE, REHANDSHAKE, ACK, CONTROL = 6, 2, 3, 4, 5


def envelope(kind: int, sender: bytes, recipient: bytes, payload: bytes) -> bytes:
    return bytes([1, kind]) + sender + recipient + payload


def parse(data: bytes) -> tuple[int, bytes, bytes, bytes]:
    assert data[0] == 1
    return data[1], data[2:34], data[34:66], data[66:]


def key_of_link(link: str) -> bytes:
    """The Ed25519 identity key inside a `pigeon://contact?card=` link."""
    bundle = read_fields(prekey_bundle_of_link(link))
    identity = read_fields(bundle[1])  # type: ignore[arg-type]
    key = identity[1]
    assert isinstance(key, bytes)
    return key


class ScriptedAppPeer:
    """An app user chatting with one node owner (whose app card link it scanned)."""

    def __init__(self, seed: bytes, owner_link: str) -> None:
        self.peer = PlainAppPeer(seed)
        self.owner_link = owner_link
        self.owner = key_of_link(owner_link)
        self.received: list[dict[str, object]] = []
        self.acks: list[bytes] = []

    def envelope(self, kind: int, payload: bytes) -> bytes:
        return envelope(kind, self.peer.identity_key, self.owner, payload)

    def initiate(self) -> bytes:
        """An X3DH init to the owner's card fallback bundle (first plaintext empty)."""
        return self.envelope(X3DH_INIT, self.peer.start(prekey_bundle_of_link(self.owner_link)))

    def text(
        self, text: str, sent_at: float = 800_000_000.5, message_id: uuid.UUID | None = None
    ) -> tuple[bytes, uuid.UUID]:
        message_id = message_id or uuid.uuid4()
        body = json.dumps(
            {"id": str(message_id).upper(), "text": text, "sentAt": sent_at},
            separators=(",", ":"),
        ).encode()
        return self.envelope(MESSAGE, self.peer.encrypt(self.owner, body)), message_id

    def ack(self, message_id: str) -> bytes:
        upper = str(uuid.UUID(hex=message_id)).upper().encode()
        return self.envelope(ACK, self.peer.encrypt(self.owner, upper))

    def receive(self, data: bytes) -> int:
        """Take one envelope from the owner; returns its type."""
        kind, sender, recipient, payload = parse(data)
        assert (sender, recipient) == (self.owner, self.peer.identity_key)
        if kind == X3DH_INIT:
            key, first = self.peer.accept(payload)
            assert (key, first) == (self.owner, b"")
        elif kind == MESSAGE:
            self.received.append(json.loads(self.peer.decrypt(self.owner, payload)))
        elif kind == ACK:
            self.acks.append(self.peer.decrypt(self.owner, payload))
        return kind
