"""Olm with the Pigeon app's framing: our wrapper against a plain vodozemac peer, both ways.

The peer (`plain_app_peer.py`) is vodozemac and pynacl only, speaking the app's formats; the
app's own tests (`pigeon-core/tests/pairwise.rs`) are the behaviour checked: first contact
by one-time and by fallback key, replay refused, a used one-time key refused, persistence.
"""

from __future__ import annotations

import nacl.signing
import pytest

from pigeon.crypto.app_bundle import AppIdentityBundle, AppPrekeyBundle
from pigeon.crypto.app_card import AppContactCard
from pigeon.crypto.app_plaintext import ESTABLISHMENT_ACK
from pigeon.crypto.errors import (
    BundleMismatch,
    DecryptFailed,
    InvalidSignature,
    MalformedInput,
    Replayed,
    StateMisuse,
    UnknownPrekey,
    WrongInitiator,
)
from pigeon.crypto.olm_account import FALLBACK_ROTATION_S, OlmAccount
from pigeon.crypto.olm_session import OlmSession, initiates
from pigeon.crypto.olm_wire import MESSAGE_TYPE_NORMAL, MESSAGE_TYPE_PREKEY, Initiation, OlmMessage
from pigeon.crypto.signing import SigningKey
from tests.crypto.plain_app_peer import PlainAppPeer, card_text, prekey_bundle_of_link

PICKLE_KEY = bytes(range(32))
NOW = 1_800_000_000.0


def _seeds() -> tuple[bytes, bytes]:
    """Two seeds, the first giving the lower Ed25519 key (the initiator's)."""
    a, b = bytes([1]) * 32, bytes([2]) * 32
    key_a = bytes(nacl.signing.SigningKey(a).verify_key)
    key_b = bytes(nacl.signing.SigningKey(b).verify_key)
    return (a, b) if key_a < key_b else (b, a)


LOW_SEED, HIGH_SEED = _seeds()


def _us(seed: bytes) -> OlmAccount:
    return OlmAccount.create(SigningKey(seed), NOW)


def test_our_session_is_read_by_a_plain_peer_and_back() -> None:
    ours, peer = _us(LOW_SEED), PlainAppPeer(HIGH_SEED)
    bundle = AppPrekeyBundle.from_bytes(peer.prekey_bundle(peer.fallback, one_time=False))
    session, initiation = OlmSession.start(ours, bundle)
    sender, first = peer.accept(initiation)
    assert (sender, first) == (ours.identity_key, b"")
    # Before the peer replies we still send pre-key messages, and the peer reads them.
    early = session.encrypt(b"early")
    assert OlmMessage.from_bytes(early).message_type == MESSAGE_TYPE_PREKEY
    assert peer.decrypt(sender, early) == b"early"
    assert session.decrypt(peer.encrypt(sender, ESTABLISHMENT_ACK)) == ESTABLISHMENT_ACK
    normal = session.encrypt(b"now normal")
    assert OlmMessage.from_bytes(normal).message_type == MESSAGE_TYPE_NORMAL
    assert peer.decrypt(sender, normal) == b"now normal"


def test_a_plain_peers_session_is_accepted_by_us_via_one_time_and_fallback_keys() -> None:
    for one_time in (True, False):
        peer, ours = PlainAppPeer(LOW_SEED), _us(HIGH_SEED)
        bundle = ours.publish_one_time_prekeys(1)[0] if one_time else ours.fallback_prekey_bundle()
        initiation = peer.start(bundle.to_bytes(), b"hello")
        session, first = OlmSession.accept(ours, initiation, peer.identity_key)
        assert first == b"hello"
        assert session.remote_identity_key == peer.identity_key
        assert session.decrypt(peer.encrypt(ours.identity_key, b"second")) == b"second"
        assert peer.decrypt(ours.identity_key, session.encrypt(b"reply")) == b"reply"
        assert peer.decrypt(ours.identity_key, session.encrypt(b"normal")) == b"normal"
        assert ours.unused_one_time_keys == 0


def test_a_replayed_initiation_opens_nothing() -> None:
    for one_time in (True, False):
        peer, ours = PlainAppPeer(LOW_SEED), _us(HIGH_SEED)
        bundle = ours.publish_one_time_prekeys(1)[0] if one_time else ours.fallback_prekey_bundle()
        initiation = peer.start(bundle.to_bytes())
        session, _ = OlmSession.accept(ours, initiation, peer.identity_key)
        with pytest.raises(Replayed):
            OlmSession.accept(ours, initiation, peer.identity_key)
        assert session.is_same_initiation(initiation)


def test_a_replay_is_refused_after_the_account_was_persisted() -> None:
    peer, ours = PlainAppPeer(LOW_SEED), _us(HIGH_SEED)
    initiation = peer.start(ours.fallback_prekey_bundle().to_bytes())
    OlmSession.accept(ours, initiation, peer.identity_key)
    restored = OlmAccount.from_bytes(ours.to_bytes(PICKLE_KEY), PICKLE_KEY, SigningKey(HIGH_SEED))
    with pytest.raises(Replayed):
        OlmSession.accept(restored, initiation, peer.identity_key)


def test_a_used_one_time_key_cannot_open_a_second_session() -> None:
    peer, ours = PlainAppPeer(LOW_SEED), _us(HIGH_SEED)
    bundle = ours.publish_one_time_prekeys(1)[0].to_bytes()
    OlmSession.accept(ours, peer.start(bundle), peer.identity_key)
    second = peer.start(bundle)  # a new session (new base key) to the same one-time key
    with pytest.raises(UnknownPrekey):
        OlmSession.accept(ours, second, peer.identity_key)


def test_the_previous_fallback_key_works_for_one_rotation_only() -> None:
    peer, ours = PlainAppPeer(LOW_SEED), _us(HIGH_SEED)
    old = ours.fallback_prekey_bundle().to_bytes()
    assert not ours.rotate_fallback_if_due(NOW + FALLBACK_ROTATION_S - 1)
    assert ours.rotate_fallback_if_due(NOW + FALLBACK_ROTATION_S)
    assert ours.fallback_prekey_bundle().prekey != AppPrekeyBundle.from_bytes(old).prekey
    OlmSession.accept(ours, peer.start(old), peer.identity_key)
    assert ours.rotate_fallback_if_due(NOW + 2 * FALLBACK_ROTATION_S)
    with pytest.raises(UnknownPrekey):
        OlmSession.accept(ours, peer.start(old), peer.identity_key)


def test_an_unpublished_prekey_is_unknown() -> None:
    peer, ours = PlainAppPeer(LOW_SEED), _us(HIGH_SEED)
    stranger = PlainAppPeer(HIGH_SEED)  # same identity key, another Olm account
    with pytest.raises(UnknownPrekey):
        OlmSession.accept(ours, peer.start(stranger.one_time_prekey_bundle()), peer.identity_key)


def test_the_lower_key_initiates() -> None:
    low, high = _us(LOW_SEED), _us(HIGH_SEED)
    assert initiates(low.identity_key, high.identity_key)
    assert not initiates(high.identity_key, low.identity_key)
    with pytest.raises(StateMisuse):
        OlmSession.start(high, low.fallback_prekey_bundle())
    crossed = PlainAppPeer(HIGH_SEED).start(low.fallback_prekey_bundle().to_bytes())
    with pytest.raises(WrongInitiator):
        OlmSession.accept(low, crossed, high.identity_key)


def test_bad_signatures_and_strangers_are_refused() -> None:
    ours, peer = _us(LOW_SEED), PlainAppPeer(HIGH_SEED)
    good = AppPrekeyBundle.from_bytes(peer.prekey_bundle(peer.fallback, one_time=False))
    flipped_prekey = AppPrekeyBundle(
        good.identity, bytes([good.prekey[0] ^ 1]) + good.prekey[1:], good.prekey_signature, False
    )
    downgraded = AppPrekeyBundle(good.identity, good.prekey, good.prekey_signature, True)
    for bundle in (flipped_prekey, downgraded):
        with pytest.raises(InvalidSignature):
            OlmSession.start(ours, bundle)
    initiator, responder = PlainAppPeer(LOW_SEED), _us(HIGH_SEED)
    initiation = initiator.start(responder.fallback_prekey_bundle().to_bytes())
    parsed = Initiation.from_bytes(initiation)
    sig = parsed.identity.binding_signature
    tampered = AppIdentityBundle(
        parsed.identity.identity_key,
        parsed.identity.curve_identity_key,
        bytes([sig[0] ^ 1]) + sig[1:],
    )
    with pytest.raises(InvalidSignature):
        OlmSession.accept(
            responder, Initiation(tampered, parsed.message).to_bytes(), initiator.identity_key
        )
    with pytest.raises(BundleMismatch):
        OlmSession.accept(responder, initiation, responder.identity_key)


def test_an_identity_bound_to_another_curve_key_is_refused() -> None:
    initiator, responder = PlainAppPeer(LOW_SEED), _us(HIGH_SEED)
    parsed = Initiation.from_bytes(initiator.start(responder.fallback_prekey_bundle().to_bytes()))
    rebound = AppIdentityBundle.sign(SigningKey(LOW_SEED), bytes(31) + b"\x09")
    with pytest.raises(BundleMismatch):
        OlmSession.accept(
            responder, Initiation(rebound, parsed.message).to_bytes(), initiator.identity_key
        )


def test_a_normal_message_cannot_open_a_session() -> None:
    ours, peer = _us(LOW_SEED), PlainAppPeer(HIGH_SEED)
    _session, initiation = OlmSession.start(
        ours, AppPrekeyBundle.from_bytes(peer.prekey_bundle(peer.fallback, one_time=False))
    )
    peer.accept(initiation)
    with pytest.raises(MalformedInput):
        ours.open_inbound(
            peer.curve_key, OlmMessage.from_bytes(peer.encrypt(ours.identity_key, b"x"))
        )


def test_tampered_replayed_and_garbled_messages_fail_typed() -> None:
    ours, peer = _us(LOW_SEED), PlainAppPeer(HIGH_SEED)
    bundle = AppPrekeyBundle.from_bytes(peer.prekey_bundle(peer.fallback, one_time=False))
    session, initiation = OlmSession.start(ours, bundle)
    sender, _ = peer.accept(initiation)
    reply = peer.encrypt(sender, b"once")
    message = OlmMessage.from_bytes(reply)
    flipped = message.ciphertext[:-1] + bytes([message.ciphertext[-1] ^ 1])
    with pytest.raises(DecryptFailed):
        session.decrypt(OlmMessage(message.message_type, flipped).to_bytes())
    assert session.decrypt(reply) == b"once"
    with pytest.raises(DecryptFailed):
        session.decrypt(reply)
    for garbage in (b"", b"\x08\x01", b"\x12\x01\x03", b"\xff"):
        with pytest.raises(MalformedInput):
            session.decrypt(garbage)


def test_state_round_trips_and_refuses_other_keys_and_edits() -> None:
    peer, ours = PlainAppPeer(LOW_SEED), _us(HIGH_SEED)
    bundle = ours.publish_one_time_prekeys(2)[1].to_bytes()
    initiation = peer.start(bundle, b"saved?")
    blob = ours.to_bytes(PICKLE_KEY)
    restored = OlmAccount.from_bytes(blob, PICKLE_KEY, SigningKey(HIGH_SEED))
    assert restored.identity_bundle() == ours.identity_bundle()
    assert restored.fallback_prekey_bundle() == ours.fallback_prekey_bundle()
    assert restored.unused_one_time_keys == 2
    session, first = OlmSession.accept(restored, initiation, peer.identity_key)
    assert first == b"saved?"
    again = OlmSession.from_bytes(session.to_bytes(PICKLE_KEY), PICKLE_KEY)
    assert again.session_id == session.session_id
    assert peer.decrypt(restored.identity_key, again.encrypt(b"after restore")) == b"after restore"
    with pytest.raises(MalformedInput):
        OlmAccount.from_bytes(blob, bytes(32), SigningKey(HIGH_SEED))
    with pytest.raises(MalformedInput):
        OlmAccount.from_bytes(bytes([blob[0] ^ 1]) + blob[1:], PICKLE_KEY, SigningKey(HIGH_SEED))
    with pytest.raises(StateMisuse):
        OlmAccount.from_bytes(blob, PICKLE_KEY, SigningKey(LOW_SEED))
    with pytest.raises(MalformedInput):
        OlmSession.from_bytes(session.to_bytes(PICKLE_KEY), bytes(32))
    with pytest.raises(MalformedInput):
        OlmSession.from_bytes(blob, PICKLE_KEY)  # an account blob is not a session blob


def test_a_session_starts_from_the_apps_card_and_the_app_starts_from_ours() -> None:
    ours, peer = _us(LOW_SEED), PlainAppPeer(HIGH_SEED)
    card = AppContactCard.from_text(card_text(peer, "Bob", ["wss://relay.pigeonwire.app/ws"]))
    assert card.relay_urls == ("wss://relay.pigeonwire.app/ws",)
    assert card.prekey_bundle is not None
    session, initiation = OlmSession.start(ours, card.prekey_bundle)
    sender, _ = peer.accept(initiation)
    assert session.decrypt(peer.encrypt(sender, b"hi")) == b"hi"

    initiator, responder = PlainAppPeer(LOW_SEED), _us(HIGH_SEED)
    link = AppContactCard.build(
        SigningKey(HIGH_SEED),
        responder.identity_bundle(),
        "Node",
        [],
        responder.fallback_prekey_bundle(),
    ).to_link()
    first = initiator.start(prekey_bundle_of_link(link), b"")
    inbound, plaintext = OlmSession.accept(responder, first, initiator.identity_key)
    assert plaintext == b""
    assert initiator.decrypt(responder.identity_key, inbound.encrypt(ESTABLISHMENT_ACK)) == b"\x00"
