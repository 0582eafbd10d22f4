"""Store keys: the device key file of the spool, and the vault's passphrase-wrapped data key.

The vault's data key is random and never changes; it is wrapped with XChaCha20-Poly1305 under a
key derived from the owner's passphrase by Argon2id (libsodium through pynacl). The wrap lives in
`vault.header` (layout below, big-endian), so a passphrase change rewrites 106 bytes, never the
database. The header's fixed fields are the wrap's associated data.

    magic "PGVH" (4) | version 1 (1) | kdf 1 = Argon2id v1.3 (1) | opslimit (4) | memlimit (8)
    | salt (16) | nonce (24) | wrapped data key + tag (48)
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import nacl.bindings
import nacl.exceptions
import nacl.pwhash.argon2id

from pigeon.store.errors import CorruptStore, DiskFull, InsecureKeyFile, StoreError, WrongKey

_LOGGER = logging.getLogger(__name__)

KEY_BYTES: Final = 32
# The store sets its own modes rather than trusting the umask (systemd's UMask=0077 is not
# everywhere): every file it creates is FILE_MODE, every directory DIR_MODE.
FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700
RandomBytes = Callable[[int], bytes]

HEADER_MAGIC: Final = b"PGVH"
HEADER_VERSION: Final = 1
KDF_ARGON2ID13: Final = 1
_FIXED: Final = struct.Struct(">4sBBIQ16s")  # magic, version, kdf, opslimit, memlimit, salt
_NONCE_BYTES: Final = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_WRAPPED_BYTES: Final = KEY_BYTES + nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES
HEADER_BYTES: Final = _FIXED.size + _NONCE_BYTES + _WRAPPED_BYTES
# A header is read before anything is authenticated: cap what it may ask of a 512 MB board.
MAX_OPSLIMIT: Final = 64
MAX_MEMLIMIT_BYTES: Final = 1 << 30


@dataclass(frozen=True, slots=True)
class DatabaseKey:
    """A raw 32-byte SQLCipher key; its repr never shows the bytes."""

    raw: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_BYTES:
            raise ValueError(f"a database key is {KEY_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class Argon2Params:
    """Argon2id cost: passes over memory (`opslimit`) and memory in bytes (`memlimit_bytes`)."""

    opslimit: int
    memlimit_bytes: int

    def __post_init__(self) -> None:
        if not nacl.pwhash.argon2id.OPSLIMIT_MIN <= self.opslimit <= MAX_OPSLIMIT:
            raise ValueError("Argon2 opslimit out of range")
        if not nacl.pwhash.argon2id.MEMLIMIT_MIN <= self.memlimit_bytes <= MAX_MEMLIMIT_BYTES:
            raise ValueError("Argon2 memlimit out of range")


# 64 MiB (an eighth of a Pi Zero 2 W's RAM) and 5 passes: 0.14 s of CPU on the x86 build host,
# so an estimated 0.7-1.1 s on a Zero 2 W; figures and method in docs/security.md.
DEFAULT_ARGON2: Final = Argon2Params(opslimit=5, memlimit_bytes=64 << 20)


@dataclass(frozen=True, slots=True)
class VaultHeader:
    """The vault's wrapped data key with the salt and Argon2 cost that unwrap it."""

    params: Argon2Params
    salt: bytes
    nonce: bytes
    wrapped_key: bytes

    def fixed_fields(self) -> bytes:
        """The header bytes before the nonce: the wrap's associated data."""
        p = self.params
        return _FIXED.pack(
            HEADER_MAGIC, HEADER_VERSION, KDF_ARGON2ID13, p.opslimit, p.memlimit_bytes, self.salt
        )

    def encode(self) -> bytes:
        """The header file's bytes."""
        return self.fixed_fields() + self.nonce + self.wrapped_key


def parse_vault_header(data: bytes) -> VaultHeader:
    """Parse header bytes; raises CorruptStore on any deviation from the layout."""
    if len(data) != HEADER_BYTES:
        raise CorruptStore(f"vault header is {len(data)} bytes, expected {HEADER_BYTES}")
    magic, version, kdf, opslimit, memlimit, salt = _FIXED.unpack_from(data)
    if magic != HEADER_MAGIC:
        raise CorruptStore("not a Pigeon vault header (bad magic)")
    if version != HEADER_VERSION or kdf != KDF_ARGON2ID13:
        raise CorruptStore(f"unsupported vault header version {version} or kdf {kdf}")
    try:
        params = Argon2Params(opslimit, memlimit)
    except ValueError as exc:
        raise CorruptStore(f"vault header: {exc}") from exc
    nonce_end = _FIXED.size + _NONCE_BYTES
    return VaultHeader(params, salt, data[_FIXED.size : nonce_end], data[nonce_end:])


def _derive_wrapping_key(passphrase: str, salt: bytes, params: Argon2Params) -> bytes:
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    try:
        return nacl.pwhash.argon2id.kdf(
            KEY_BYTES,
            secret,
            salt,
            opslimit=params.opslimit,
            memlimit=params.memlimit_bytes,
        )
    except (nacl.exceptions.RuntimeError, MemoryError) as exc:
        raise StoreError("Argon2id could not run (out of memory?)") from exc


def wrap_data_key(
    data_key: DatabaseKey, passphrase: str, params: Argon2Params, random_bytes: RandomBytes
) -> VaultHeader:
    """Wrap `data_key` under `passphrase` with a fresh salt and nonce."""
    if not passphrase:
        raise ValueError("the passphrase must not be empty")
    salt = random_bytes(nacl.pwhash.argon2id.SALTBYTES)
    nonce = random_bytes(_NONCE_BYTES)
    unwrapped = VaultHeader(params, salt, nonce, b"")
    wrapping_key = _derive_wrapping_key(passphrase, salt, params)
    wrapped = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        data_key.raw, unwrapped.fixed_fields(), nonce, wrapping_key
    )
    return VaultHeader(params, salt, nonce, wrapped)


def unwrap_data_key(header: VaultHeader, passphrase: str) -> DatabaseKey:
    """The data key inside `header`; raises WrongKey if `passphrase` (or the header) is wrong."""
    wrapping_key = _derive_wrapping_key(passphrase, header.salt, header.params)
    try:
        raw = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            header.wrapped_key, header.fixed_fields(), header.nonce, wrapping_key
        )
    except nacl.exceptions.CryptoError:
        raise WrongKey("wrong passphrase") from None
    return DatabaseKey(raw)


def read_vault_header(path: Path) -> VaultHeader:
    """Read and parse the header file; raises CorruptStore naming the file."""
    try:
        data = _read_small_file(path, HEADER_BYTES + 1)
    except OSError as exc:
        raise CorruptStore(f"{path}: cannot read the vault header ({exc.strerror})") from exc
    try:
        return parse_vault_header(data)
    except CorruptStore as exc:
        raise CorruptStore(f"{path}: {exc}") from None


def write_vault_header(path: Path, header: VaultHeader) -> None:
    """Replace the header file atomically: a crash leaves the old or the new one, whole."""
    atomic_write(path, header.encode())


def load_or_create_device_key(path: Path, random_bytes: RandomBytes = os.urandom) -> DatabaseKey:
    """The device key in `path`, created (mode 0600) on first call.

    Raises InsecureKeyFile if group or others may access it, CorruptStore if it is not 32 bytes.
    """
    try:
        return _read_device_key(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the device key ({exc.strerror})") from exc
    key = DatabaseKey(random_bytes(KEY_BYTES))
    atomic_write(path, key.raw)
    _LOGGER.info("created a new device key in %s", path)
    return key


def _read_device_key(path: Path) -> DatabaseKey:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CorruptStore(f"{path}: the device key is not a regular file")
        if info.st_mode & 0o077:
            raise InsecureKeyFile(
                f"{path}: the device key is readable by others (mode {info.st_mode & 0o777:o});"
                " run chmod 600 on it"
            )
        data = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != KEY_BYTES:
        raise CorruptStore(f"{path}: the device key is {len(data)} bytes, expected {KEY_BYTES}")
    return DatabaseKey(data)


def _read_small_file(path: Path, limit: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return os.read(fd, limit)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` with mode 0600 via temp file, fsync, rename and directory fsync."""
    try:
        _atomic_write(path, data)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"{path}: no space left to write it") from exc
        raise StoreError(f"{path}: cannot write it ({exc.strerror})") from exc


def temporary_path(path: Path) -> Path:
    """Where `atomic_write` stages `path` (a crash can leave it behind)."""
    return path.with_name(path.name + ".tmp")


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = temporary_path(path)
    temporary.unlink(missing_ok=True)  # left by a crash mid-write; never used as a key
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make renames and creations inside `directory` survive power loss."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
