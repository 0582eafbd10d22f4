"""Published Noise vectors: our XX reproduces every message, hash and transport ciphertext.

The driver here is written independently of `pigeon.crypto.noise_vectors` (which `pigeon
selftest` uses), so a bug in one cannot hide a bug in the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pigeon.crypto import noise_vectors
from pigeon.crypto.errors import CryptoError, MalformedInput
from pigeon.crypto.noise import HandshakeState

HERE = Path(__file__).resolve().parent
SUBSET = HERE / "vectors" / "xx_25519_chachapoly_subset.json"
SHARED = HERE.parents[2] / "shared" / "vectors"  # the project's reference folder, if present
SUITE_NAMES = {"Noise_XX_25519_ChaChaPoly_SHA256", "Noise_XX_25519_ChaChaPoly_BLAKE2s"}


def _load(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text(encoding="utf-8"))
    vectors: list[dict[str, Any]] = document["vectors"] if isinstance(document, dict) else document
    return vectors


def _plain_xx(vectors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exactly our two suites: names like XX1, XXpsk3 or other suites do not match."""
    return [v for v in vectors if v.get("protocol_name") in SUITE_NAMES and not v.get("init_psks")]


def _replay(vector: dict[str, Any]) -> None:
    def h(field: str) -> bytes:
        return bytes.fromhex(vector[field])

    name = vector["protocol_name"]
    initiator = HandshakeState(
        name, True, h("init_static"), h("init_prologue"), h("init_ephemeral")
    )
    responder = HandshakeState(
        name, False, h("resp_static"), h("resp_prologue"), h("resp_ephemeral")
    )
    messages = [(bytes.fromhex(m["payload"]), m["ciphertext"]) for m in vector["messages"]]
    for index, (payload, ciphertext) in enumerate(messages[:3]):
        sender, receiver = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        written = sender.write_message(payload)
        assert written.hex() == ciphertext, f"handshake message {index + 1}"
        assert receiver.read_message(written) == payload
    assert initiator.handshake_hash == responder.handshake_hash
    if "handshake_hash" in vector:  # snow's vectors carry none
        assert initiator.handshake_hash.hex() == vector["handshake_hash"]
    initiator_send, initiator_receive = initiator.split()
    responder_send, responder_receive = responder.split()
    for index, (payload, ciphertext) in enumerate(messages[3:], start=3):
        # Senders keep alternating after the handshake: the responder sends message 4.
        if index % 2 == 0:
            sender_state, receiver_state = initiator_send, responder_receive
        else:
            sender_state, receiver_state = responder_send, initiator_receive
        written = sender_state.encrypt_with_ad(b"", payload)
        assert written.hex() == ciphertext, f"transport message {index + 1}"
        assert receiver_state.decrypt_with_ad(b"", written) == payload


SUBSET_VECTORS = _load(SUBSET)


def test_subset_holds_the_six_expected_vectors() -> None:
    assert len(SUBSET_VECTORS) == 6
    assert {v["protocol_name"] for v in SUBSET_VECTORS} == SUITE_NAMES
    assert all(len(v["messages"]) >= 5 for v in SUBSET_VECTORS)


@pytest.mark.parametrize(
    "vector",
    SUBSET_VECTORS,
    ids=[f"{v['source'].split()[0]}-{v['protocol_name'][-7:]}" for v in SUBSET_VECTORS],
)
def test_subset_vector(vector: dict[str, Any]) -> None:
    _replay(vector)


@pytest.mark.parametrize("file_name", ["cacophony.json", "snow.json"])
def test_every_plain_xx_vector_in_the_shared_folder(file_name: str) -> None:
    path = SHARED / file_name
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    vectors = _plain_xx(_load(path))
    assert len(vectors) == 2, "one vector per suite expected"
    for vector in vectors:
        _replay(vector)


def test_known_answer_of_the_selftest_is_the_cacophony_sha256_vector() -> None:
    cacophony = [v for v in SUBSET_VECTORS if "cacophony" in v["source"]]
    expected = next(v for v in cacophony if v["protocol_name"].endswith("SHA256"))
    embedded = dict(noise_vectors.KNOWN_ANSWER)
    assert embedded["messages"] == expected["messages"]
    assert {k: embedded[k] for k in embedded if k != "messages"} == {
        k: expected[k] for k in embedded if k != "messages"
    }
    noise_vectors.check_known_answer()


def test_runner_selects_only_plain_xx_of_our_suites() -> None:
    base = dict(SUBSET_VECTORS[0])
    assert noise_vectors.is_supported(base)
    for change in (
        {"protocol_name": "Noise_XX1_25519_ChaChaPoly_SHA256"},
        {"protocol_name": "Noise_XXpsk3_25519_ChaChaPoly_SHA256"},
        {"protocol_name": "Noise_XX_25519_AESGCM_SHA256"},
        {"protocol_name": "Noise_XX_448_ChaChaPoly_BLAKE2b"},
        {"init_psks": ["00" * 32]},
        {"fallback": True},
        {"fail": True},
    ):
        assert not noise_vectors.is_supported({**base, **change}), change
    old_layout = {k: v for k, v in base.items() if k != "protocol_name"}
    assert noise_vectors.is_supported({**old_layout, "name": base["protocol_name"]})


@pytest.mark.parametrize("vector", SUBSET_VECTORS, ids=lambda v: v["protocol_name"][-7:])
def test_runner_catches_any_changed_field(vector: dict[str, Any]) -> None:
    noise_vectors.check_vector(vector)
    for field in ("init_static", "resp_ephemeral", "init_prologue"):
        changed = {**vector, field: "00" + vector[field][2:] if vector[field] else "00"}
        # A changed key shows as a different message; a one-sided prologue as a failed decrypt.
        with pytest.raises((AssertionError, CryptoError)):
            noise_vectors.check_vector(changed)
    for index in range(len(vector["messages"])):
        messages = [dict(m) for m in vector["messages"]]
        ciphertext = messages[index]["ciphertext"]
        messages[index]["ciphertext"] = ciphertext[:-1] + ("0" if ciphertext[-1] != "0" else "1")
        with pytest.raises(AssertionError):
            noise_vectors.check_vector({**vector, "messages": messages})
    if "handshake_hash" in vector:
        with pytest.raises(AssertionError):
            noise_vectors.check_vector({**vector, "handshake_hash": "00" * 32})


def test_runner_rejects_malformed_vectors() -> None:
    base = dict(SUBSET_VECTORS[0])
    for change in (
        {"init_static": "zz"},
        {"init_static": 12},
        {"messages": "none"},
        {"messages": base["messages"][:2]},
    ):
        with pytest.raises(MalformedInput):
            noise_vectors.check_vector({**base, **change})
    with pytest.raises(MalformedInput):
        noise_vectors.vectors_in({"not vectors": []})
    with pytest.raises(MalformedInput):
        noise_vectors.vectors_in([1, 2])
    assert noise_vectors.vectors_in([base]) == [base]
