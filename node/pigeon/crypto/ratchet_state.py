"""Versioned byte form of a Double Ratchet's state, parsed strictly.

Version 1 layout (integers big-endian):
  u8 version (1) | u8 flags (bit 0: DHr, bit 1: CKs, bit 2: CKr present; others zero)
  32 DHs private key | 32 RK | [32 DHr] [32 CKs] [32 CKr] (each only if its flag is set)
  u32 Ns | u32 Nr | u32 PN | u8 P | P x 32 earlier remote ratchet keys, oldest first
  u32 skipped count | count x (32 ratchet public key | u32 message number | 32 message key),
  oldest first
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from pigeon.crypto.errors import MalformedInput

STATE_VERSION: Final = 1
MAX_SKIP: Final = 1000
MAX_SKIPPED_TOTAL: Final = 2000
MAX_COUNTER: Final = 0xFFFF_FFFF
MAX_PREVIOUS_CHAINS: Final = 16

_KEY_LEN: Final = 32
_HAS_DHR: Final = 0x01
_HAS_CKS: Final = 0x02
_HAS_CKR: Final = 0x04
_COUNTERS: Final = struct.Struct(">IIIB")
_COUNT: Final = struct.Struct(">I")
_SKIPPED_ENTRY_LEN: Final = _KEY_LEN + 4 + _KEY_LEN

SkippedKey = tuple[bytes, int, bytes]


@dataclass(frozen=True, slots=True, repr=False)
class RatchetSnapshot:
    """Every field of a ratchet at one moment; `repr` is the default so no key is shown."""

    dhs_private: bytes
    rk: bytes
    dhr: bytes | None
    cks: bytes | None
    ckr: bytes | None
    ns: int
    nr: int
    pn: int
    previous_dhr: tuple[bytes, ...]
    skipped: tuple[SkippedKey, ...]

    def to_bytes(self) -> bytes:
        """The version-1 byte form."""
        flags = (
            (_HAS_DHR if self.dhr is not None else 0)
            | (_HAS_CKS if self.cks is not None else 0)
            | (_HAS_CKR if self.ckr is not None else 0)
        )
        parts = [bytes((STATE_VERSION, flags)), self.dhs_private, self.rk]
        parts.extend(key for key in (self.dhr, self.cks, self.ckr) if key is not None)
        parts.append(_COUNTERS.pack(self.ns, self.nr, self.pn, len(self.previous_dhr)))
        parts.extend(self.previous_dhr)
        parts.append(_COUNT.pack(len(self.skipped)))
        for public, number, message_key in self.skipped:
            parts.extend((public, number.to_bytes(4, "big"), message_key))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> RatchetSnapshot:
        """Parse the byte form; raises MalformedInput on any version, length or field fault."""
        reader = _Reader(data)
        version, flags = reader.take(2)
        if version != STATE_VERSION:
            raise MalformedInput(f"unsupported ratchet state version {version}")
        if flags & ~(_HAS_DHR | _HAS_CKS | _HAS_CKR):
            raise MalformedInput("unknown ratchet state flags")
        if flags & _HAS_CKR and not flags & _HAS_DHR:
            raise MalformedInput("ratchet state has a receiving chain without a remote key")
        dhs_private, rk = reader.take(_KEY_LEN), reader.take(_KEY_LEN)
        dhr = reader.take(_KEY_LEN) if flags & _HAS_DHR else None
        cks = reader.take(_KEY_LEN) if flags & _HAS_CKS else None
        ckr = reader.take(_KEY_LEN) if flags & _HAS_CKR else None
        ns, nr, pn, previous = _COUNTERS.unpack(reader.take(_COUNTERS.size))
        if previous > MAX_PREVIOUS_CHAINS:
            raise MalformedInput("ratchet state remembers too many earlier chains")
        previous_dhr = tuple(reader.take(_KEY_LEN) for _ in range(previous))
        (count,) = _COUNT.unpack(reader.take(_COUNT.size))
        if count > MAX_SKIPPED_TOTAL:
            raise MalformedInput("ratchet state holds too many skipped keys")
        skipped = tuple(_parse_skipped(reader.take(count * _SKIPPED_ENTRY_LEN), count))
        if len({(public, number) for public, number, _ in skipped}) != count:
            raise MalformedInput("ratchet state repeats a skipped key")
        reader.finish()
        return cls(dhs_private, rk, dhr, cks, ckr, ns, nr, pn, previous_dhr, skipped)


def _parse_skipped(block: bytes, count: int) -> list[SkippedKey]:
    entries = []
    for index in range(count):
        at = index * _SKIPPED_ENTRY_LEN
        public = block[at : at + _KEY_LEN]
        number = int.from_bytes(block[at + _KEY_LEN : at + _KEY_LEN + 4], "big")
        entries.append((public, number, block[at + _KEY_LEN + 4 : at + _SKIPPED_ENTRY_LEN]))
    return entries


class _Reader:
    """Consumes a byte string front to back; any shortfall or leftover is MalformedInput."""

    __slots__ = ("_at", "_data")

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._at = 0

    def take(self, length: int) -> bytes:
        end = self._at + length
        if end > len(self._data):
            raise MalformedInput("ratchet state is truncated")
        chunk = self._data[self._at : end]
        self._at = end
        return chunk

    def finish(self) -> None:
        if self._at != len(self._data):
            raise MalformedInput("ratchet state has trailing bytes")
