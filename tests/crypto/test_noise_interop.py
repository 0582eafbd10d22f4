"""Interoperability with the independent PyPI `noiseprotocol` 0.3.1 (test-only), both roles."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from noise.connection import Keypair, NoiseConnection

from pigeon.crypto.errors import DecryptFailed
from pigeon.crypto.noise import HandshakeState
from tests.crypto.noise_helpers import SUITES

PAYLOADS = (b"first, unencrypted", b"second, from the responder", b"third, from the initiator")
TRANSPORT = [b"", b"x", bytes(range(256)) * 4, b"last"]


def _peer(suite: str, initiator: bool, static: bytes, prologue: bytes) -> NoiseConnection:
    connection = NoiseConnection.from_name(suite.encode())
    connection.set_keypair_from_private_bytes(Keypair.STATIC, static)
    connection.set_prologue(prologue)
    if initiator:
        connection.set_as_initiator()
    else:
        connection.set_as_responder()
    connection.start_handshake()
    return connection


def _public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def _interop(
    suite: str,
    we_initiate: bool,
    payloads: tuple[bytes, bytes, bytes],
    transport: list[bytes],
    prologue: bytes = b"pigeon interop",
) -> None:
    our_static, their_static = os.urandom(32), os.urandom(32)
    ours = HandshakeState(suite, we_initiate, our_static, prologue)
    theirs = _peer(suite, not we_initiate, their_static, prologue)
    for index, payload in enumerate(payloads):
        if (index % 2 == 0) == we_initiate:
            assert bytes(theirs.read_message(ours.write_message(payload))) == payload
        else:
            assert ours.read_message(bytes(theirs.write_message(payload))) == payload
    assert ours.complete
    assert theirs.handshake_finished
    assert ours.handshake_hash == theirs.get_handshake_hash()
    assert ours.remote_static == _public(their_static)
    send, receive = ours.split()
    for message in transport:
        assert theirs.decrypt(send.encrypt_with_ad(b"", message)) == message
        assert receive.decrypt_with_ad(b"", theirs.encrypt(message)) == message


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "we-respond"])
def test_interop(suite: str, we_initiate: bool) -> None:
    _interop(suite, we_initiate, PAYLOADS, TRANSPORT)


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "we-respond"])
def test_interop_with_empty_prologue_and_payloads(suite: str, we_initiate: bool) -> None:
    _interop(suite, we_initiate, (b"", b"", b""), [b""], prologue=b"")


@pytest.mark.parametrize("suite", SUITES)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    we_initiate=st.booleans(),
    payloads=st.tuples(*[st.binary(max_size=2000)] * 3),
    transport=st.lists(st.binary(max_size=2000), max_size=5),
)
def test_interop_random_payloads(
    suite: str,
    we_initiate: bool,
    payloads: tuple[bytes, bytes, bytes],
    transport: list[bytes],
) -> None:
    _interop(suite, we_initiate, payloads, transport)


@pytest.mark.parametrize("suite", SUITES)
def test_their_tampered_message_is_refused_and_then_the_genuine_one_accepted(suite: str) -> None:
    ours = HandshakeState(suite, True, os.urandom(32))
    theirs = _peer(suite, False, os.urandom(32), b"")
    theirs.read_message(ours.write_message(b""))
    genuine = bytes(theirs.write_message(b"payload"))
    tampered = genuine[:-1] + bytes([genuine[-1] ^ 0x80])
    with pytest.raises(DecryptFailed):
        ours.read_message(tampered)
    assert ours.read_message(genuine) == b"payload"
    theirs.read_message(ours.write_message(b""))
    assert ours.handshake_hash == theirs.get_handshake_hash()
