"""A Pigeon-app peer built from vodozemac and pynacl alone, from the app's published formats.

It shares no code with `pigeon.crypto`: its protobuf is spelled out byte by byte from
`proto/pigeon/wire/v1/pigeon_wire.proto` (field key bytes 0x0A, 0x12, 0x1A, 0x08, 0x20), its
signatures follow `pigeon-core/src/identity.rs`, so a test passing against it checks our
wrapper against the formats, not against itself.
"""

from __future__ import annotations

import base64

import nacl.exceptions
import nacl.signing
import vodozemac

BINDING = b"Pigeon.IdentityBinding.v1"
PREKEY = b"Pigeon.Prekey.v1"


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def delimited(key: int, value: bytes) -> bytes:
    return bytes([key]) + varint(len(value)) + value


def read_fields(data: bytes) -> dict[int, bytes | int]:
    """Fields of a message with one-byte keys (all ours have field numbers below 16); of a
    repeated field, the last."""
    return dict(fields_in_order(data))


def fields_in_order(data: bytes) -> list[tuple[int, bytes | int]]:
    """(field number, value) of a message with one-byte keys, repeated fields each time."""
    fields: list[tuple[int, bytes | int]] = []
    offset = 0
    while offset < len(data):
        key = data[offset]
        offset += 1
        length, shift = 0, 0
        while True:
            byte = data[offset]
            offset += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if key & 7 == 0:
            fields.append((key >> 3, length))
        else:
            fields.append((key >> 3, data[offset : offset + length]))
            offset += length
    return fields


def olm_message(message: vodozemac.AnyOlmMessage) -> bytes:
    kind, ciphertext = message.to_parts()
    return (b"\x08" + varint(kind) if kind else b"") + delimited(0x12, ciphertext)


def parse_olm_message(data: bytes) -> vodozemac.AnyOlmMessage:
    fields = read_fields(data)
    kind, ciphertext = fields.get(1, 0), fields[2]
    assert isinstance(kind, int)
    assert isinstance(ciphertext, bytes)
    return vodozemac.AnyOlmMessage.from_parts(kind, ciphertext)


class PlainAppPeer:
    """One app device: an Ed25519 identity and a vodozemac account."""

    def __init__(self, seed: bytes) -> None:
        self.signing = nacl.signing.SigningKey(seed)
        self.identity_key = bytes(self.signing.verify_key)
        self.account = vodozemac.Account()
        self.account.generate_fallback_key()  # type: ignore[attr-defined]
        self.fallback = next(iter(self.account.fallback_key.values())).to_bytes()  # type: ignore[attr-defined]
        self.account.mark_keys_as_published()
        self.sessions: dict[bytes, vodozemac.Session] = {}

    @property
    def curve_key(self) -> bytes:
        return self.account.curve25519_key.to_bytes()

    def identity_bundle(self) -> bytes:
        signature = self.signing.sign(BINDING + self.curve_key).signature
        return (
            delimited(0x0A, self.identity_key)
            + delimited(0x12, self.curve_key)
            + delimited(0x1A, signature)
        )

    def prekey_bundle(self, prekey: bytes, one_time: bool) -> bytes:
        signature = self.signing.sign(PREKEY + bytes([one_time]) + prekey).signature
        flag = b"\x20\x01" if one_time else b""
        return (
            delimited(0x0A, self.identity_bundle())
            + delimited(0x12, prekey)
            + delimited(0x1A, signature)
            + flag
        )

    def one_time_prekey_bundle(self) -> bytes:
        self.account.generate_one_time_keys(1)
        key = next(iter(self.account.one_time_keys.values())).to_bytes()
        self.account.mark_keys_as_published()
        return self.prekey_bundle(key, one_time=True)

    def start(self, peer_prekey_bundle: bytes, first: bytes = b"") -> bytes:
        """Open a session from the peer's bundle (verifying it) and return the Initiation."""
        bundle = read_fields(peer_prekey_bundle)
        identity = read_fields(bundle[1])  # type: ignore[arg-type]
        ed_key, curve, binding = identity[1], identity[2], identity[3]
        prekey, signature = bundle[2], bundle[3]
        assert isinstance(ed_key, bytes)
        assert isinstance(curve, bytes)
        assert isinstance(prekey, bytes)
        verify = nacl.signing.VerifyKey(ed_key).verify
        verify(BINDING + curve, binding)  # type: ignore[arg-type]
        verify(PREKEY + bytes([bundle.get(4, 0)]) + prekey, signature)  # type: ignore[arg-type,list-item]
        session = self.account.create_outbound_session(
            vodozemac.Curve25519PublicKey.from_bytes(curve),
            vodozemac.Curve25519PublicKey.from_bytes(prekey),
        )
        self.sessions[ed_key] = session
        message = olm_message(session.encrypt(first))
        return delimited(0x0A, self.identity_bundle()) + delimited(0x12, message)

    def accept(self, initiation: bytes) -> tuple[bytes, bytes]:
        """Accept an Initiation; returns the initiator's Ed25519 key and the first plaintext."""
        fields = read_fields(initiation)
        identity = read_fields(fields[1])  # type: ignore[arg-type]
        ed_key, curve, binding = identity[1], identity[2], identity[3]
        assert isinstance(ed_key, bytes)
        assert isinstance(curve, bytes)
        nacl.signing.VerifyKey(ed_key).verify(BINDING + curve, binding)  # type: ignore[arg-type]
        prekey_message = parse_olm_message(fields[2]).to_pre_key()  # type: ignore[arg-type]
        assert prekey_message is not None
        session, plaintext = self.account.create_inbound_session(
            vodozemac.Curve25519PublicKey.from_bytes(curve), prekey_message
        )
        self.sessions[ed_key] = session
        return ed_key, plaintext

    def encrypt(self, peer: bytes, plaintext: bytes) -> bytes:
        return olm_message(self.sessions[peer].encrypt(plaintext))

    def decrypt(self, peer: bytes, payload: bytes) -> bytes:
        return self.sessions[peer].decrypt(parse_olm_message(payload))


def card_text(peer: PlainAppPeer, name: str, relay_urls: list[str]) -> str:
    """The app's QR text of `peer`'s card: base64 of ContactCard v3 with its fallback bundle."""
    relay_signature = peer.signing.sign("\n".join(relay_urls).encode()).signature
    body = b"\x08\x03" + delimited(0x12, peer.identity_bundle()) + delimited(0x1A, name.encode())
    body += b"".join(delimited(0x22, url.encode()) for url in relay_urls)
    body += delimited(0x2A, relay_signature)
    body += delimited(0x32, peer.prekey_bundle(peer.fallback, one_time=False))
    return base64.b64encode(body).decode()


def card_of_link(link: str) -> bytes:
    """The ContactCard bytes of a `pigeon://contact?card=` link (base64url, no padding)."""
    payload = link.split("card=", 1)[1]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))


def relay_urls_of_link(link: str) -> list[str]:
    """The relay URLs a link's card advertises, as the app keeps them: none unless the relay
    signature (Ed25519 by the card's identity key over the URLs joined by "\n") verifies."""
    fields = fields_in_order(card_of_link(link))
    urls = [value.decode() for number, value in fields if number == 4 and isinstance(value, bytes)]
    card = dict(fields)
    identity = read_fields(card[2])  # type: ignore[arg-type]
    try:
        nacl.signing.VerifyKey(identity[1]).verify(  # type: ignore[arg-type]
            "\n".join(urls).encode(),
            card[5],  # type: ignore[arg-type]
        )
    except nacl.exceptions.BadSignatureError:
        return []
    return urls


def prekey_bundle_of_link(link: str) -> bytes:
    """The encoded PrekeyBundle inside a `pigeon://contact?card=` link, as the app reads it."""
    bundle = read_fields(card_of_link(link))[6]
    assert isinstance(bundle, bytes)
    return bundle
