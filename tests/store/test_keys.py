"""Device key file and the passphrase-wrapped vault key: creation, refusal, wrap and rewrap."""

import contextlib
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.store.errors import CorruptStore, InsecureKeyFile, StoreError, WrongKey
from pigeon.store.keys import (
    HEADER_BYTES,
    KEY_BYTES,
    Argon2Params,
    DatabaseKey,
    load_or_create_device_key,
    parse_vault_header,
    read_vault_header,
    unwrap_data_key,
    wrap_data_key,
    write_vault_header,
)
from tests.store.conftest import CHEAP_ARGON2

DATA_KEY = DatabaseKey(bytes(range(32)))


def test_device_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    first = load_or_create_device_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == first.raw
    assert load_or_create_device_key(path) == first
    assert not (tmp_path / "device.key.tmp").exists()


def test_device_key_uses_the_injected_rng(tmp_path: Path) -> None:
    key = load_or_create_device_key(tmp_path / "k", lambda n: b"\x07" * n)
    assert key.raw == b"\x07" * KEY_BYTES


def test_a_stale_temporary_file_from_a_crash_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "device.key.tmp").write_bytes(b"half")
    key = load_or_create_device_key(tmp_path / "device.key")
    assert (tmp_path / "device.key").read_bytes() == key.raw


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_device_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "device.key"
    path.write_bytes(os.urandom(KEY_BYTES))
    path.chmod(mode)
    with pytest.raises(InsecureKeyFile, match="chmod 600"):
        load_or_create_device_key(path)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_device_key_of_wrong_size_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "device.key"
    path.write_bytes(b"k" * size)
    path.chmod(0o600)
    with pytest.raises(CorruptStore, match="device key is"):
        load_or_create_device_key(path)


def test_device_key_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(os.urandom(KEY_BYTES))
    target.chmod(0o600)
    (tmp_path / "device.key").symlink_to(target)
    with pytest.raises(StoreError, match="cannot read the device key"):
        load_or_create_device_key(tmp_path / "device.key")


def test_keys_never_show_in_reprs() -> None:
    assert DATA_KEY.raw.hex() not in repr(DATA_KEY)
    assert "raw" not in repr(DATA_KEY)
    header = wrap_data_key(DATA_KEY, "pw", CHEAP_ARGON2, os.urandom)
    assert DATA_KEY.raw.hex() not in repr(header)


def test_database_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        DatabaseKey(b"short")


def test_wrap_unwrap_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "vault.header"
    write_vault_header(path, wrap_data_key(DATA_KEY, "pässword", CHEAP_ARGON2, os.urandom))
    assert len(path.read_bytes()) == HEADER_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert DATA_KEY.raw not in path.read_bytes()
    assert unwrap_data_key(read_vault_header(path), "pässword") == DATA_KEY


def test_passphrases_are_compared_after_unicode_normalisation() -> None:
    header = wrap_data_key(DATA_KEY, "caf\u00e9", CHEAP_ARGON2, os.urandom)
    assert unwrap_data_key(header, "cafe\u0301") == DATA_KEY


def test_wrong_passphrase_raises_wrong_key_without_echoing_it() -> None:
    header = wrap_data_key(DATA_KEY, "right one", CHEAP_ARGON2, os.urandom)
    with pytest.raises(WrongKey) as info:
        unwrap_data_key(header, "wrong one")
    assert "wrong one" not in str(info.value)


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        wrap_data_key(DATA_KEY, "", CHEAP_ARGON2, os.urandom)


@pytest.mark.parametrize("offset", [4, 5, 6, 10, 14, 22, 40, 60, 100])
def test_any_tampered_header_byte_is_refused(offset: int) -> None:
    header = wrap_data_key(DATA_KEY, "pw", CHEAP_ARGON2, os.urandom).encode()
    tampered = bytearray(header)
    tampered[offset] ^= 0x01
    with pytest.raises((WrongKey, CorruptStore)):
        unwrap_data_key(parse_vault_header(bytes(tampered)), "pw")


def test_header_asking_for_absurd_memory_is_refused_before_argon2_runs() -> None:
    header = bytearray(wrap_data_key(DATA_KEY, "pw", CHEAP_ARGON2, os.urandom).encode())
    header[10:18] = (1 << 40).to_bytes(8, "big")  # memlimit: 1 TiB
    with pytest.raises(CorruptStore, match="memlimit"):
        parse_vault_header(bytes(header))


def test_header_of_other_magic_or_version_is_refused() -> None:
    header = wrap_data_key(DATA_KEY, "pw", CHEAP_ARGON2, os.urandom).encode()
    with pytest.raises(CorruptStore, match="magic"):
        parse_vault_header(b"XXXX" + header[4:])
    with pytest.raises(CorruptStore, match="version"):
        parse_vault_header(header[:4] + b"\x02" + header[5:])


def test_missing_or_short_header_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CorruptStore, match=r"vault\.header"):
        read_vault_header(tmp_path / "vault.header")
    (tmp_path / "vault.header").write_bytes(b"PGVH")
    with pytest.raises(CorruptStore, match=r"vault\.header"):
        read_vault_header(tmp_path / "vault.header")


@settings(max_examples=300)
@given(st.binary(max_size=2 * HEADER_BYTES))
def test_header_parser_raises_only_corrupt_store(data: bytes) -> None:
    with contextlib.suppress(CorruptStore):
        parse_vault_header(data)


@pytest.mark.parametrize(
    ("opslimit", "memlimit"), [(0, 8192), (65, 8192), (1, 8191), (1, (1 << 30) + 1)]
)
def test_argon2_params_out_of_range_are_refused(opslimit: int, memlimit: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        Argon2Params(opslimit, memlimit)
