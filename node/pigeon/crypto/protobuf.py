"""A minimal proto3 wire codec for the Pigeon app's few messages (`pigeon_wire.proto`).

Only what those messages use: varint fields (uint32, bool) and length-delimited fields (bytes,
string, nested messages). Unknown fields are skipped as proto3 readers do (varint, 64-bit,
length-delimited, 32-bit); groups are refused. Stricter than protobuf where the app never
writes what we refuse: a varint longer than 10 bytes or above 2^64-1, a uint32 above 2^32-1, a
bool other than 0 or 1, invalid UTF-8 in a string, and a known singular field that repeats.
Encoding is canonical: fields in number order, proto3 defaults (0, false, empty) left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from pigeon.crypto.errors import MalformedInput

WIRE_VARINT: Final = 0
WIRE_FIXED64: Final = 1
WIRE_LEN: Final = 2
WIRE_FIXED32: Final = 5
MAX_VARINT_LEN: Final = 10
UINT32_MAX: Final = 2**32 - 1
UINT64_MAX: Final = 2**64 - 1

FieldValue = int | bytes


@dataclass(frozen=True, slots=True)
class Field:
    """One decoded field: its number, wire type and value (an int or the delimited bytes)."""

    number: int
    wire_type: int
    value: FieldValue


def encode_varint(value: int) -> bytes:
    """The base-128 varint of 0 <= value <= 2^64-1."""
    if not 0 <= value <= UINT64_MAX:
        raise ValueError("a varint holds 0..2^64-1")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, offset: int) -> tuple[int, int]:
    value = 0
    for index in range(MAX_VARINT_LEN):
        if offset + index >= len(data):
            raise MalformedInput("protobuf varint is truncated")
        byte = data[offset + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if value > UINT64_MAX:
                raise MalformedInput("protobuf varint exceeds 64 bits")
            return value, offset + index + 1
    raise MalformedInput("protobuf varint is longer than 10 bytes")


def iter_fields(data: bytes) -> Iterator[Field]:
    """Every field of one message, in wire order; raises MalformedInput on bad framing."""
    offset = 0
    while offset < len(data):
        key, offset = _read_varint(data, offset)
        number, wire_type = key >> 3, key & 0x7
        if not 1 <= number <= 2**29 - 1:
            raise MalformedInput("protobuf field number is out of range")
        value: FieldValue
        if wire_type == WIRE_VARINT:
            value, offset = _read_varint(data, offset)
        elif wire_type == WIRE_LEN:
            length, offset = _read_varint(data, offset)
            if length > len(data) - offset:
                raise MalformedInput("protobuf length-delimited field is truncated")
            value, offset = data[offset : offset + length], offset + length
        elif wire_type in (WIRE_FIXED64, WIRE_FIXED32):
            size = 8 if wire_type == WIRE_FIXED64 else 4
            if size > len(data) - offset:
                raise MalformedInput("protobuf fixed-width field is truncated")
            value, offset = data[offset : offset + size], offset + size
        else:
            raise MalformedInput("protobuf wire type is not supported")
        yield Field(number, wire_type, value)


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded message: singular known fields by number, repeated ones as tuples."""

    singular: Mapping[int, FieldValue]
    repeated: Mapping[int, tuple[bytes, ...]]

    def bytes_field(self, number: int) -> bytes:
        """A bytes/message field, b"" when absent."""
        value = self.singular.get(number, b"")
        if not isinstance(value, bytes):
            raise MalformedInput(f"protobuf field {number} is not length-delimited")
        return value

    def has(self, number: int) -> bool:
        """Whether a singular field was present on the wire."""
        return number in self.singular

    def string_field(self, number: int) -> str:
        """A string field, "" when absent; raises MalformedInput on invalid UTF-8."""
        return decode_string(self.bytes_field(number))

    def uint32_field(self, number: int) -> int:
        """A uint32 field, 0 when absent."""
        value = self.uint64_field(number)
        if value > UINT32_MAX:
            raise MalformedInput(f"protobuf field {number} exceeds uint32")
        return value

    def uint64_field(self, number: int) -> int:
        """A uint64 field, 0 when absent."""
        value = self.singular.get(number, 0)
        if not isinstance(value, int):
            raise MalformedInput(f"protobuf field {number} is not a varint")
        return value

    def bool_field(self, number: int) -> bool:
        """A bool field, False when absent; only 0 and 1 are accepted."""
        value = self.uint32_field(number)
        if value > 1:
            raise MalformedInput(f"protobuf bool field {number} is not 0 or 1")
        return value == 1


def decode_string(value: bytes) -> str:
    """Strict UTF-8, as proto3 requires of strings."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInput("protobuf string is not UTF-8") from exc


def decode_message(
    data: bytes,
    *,
    varints: Iterable[int] = (),
    lengths: Iterable[int] = (),
    repeated: Iterable[int] = (),
) -> Message:
    """Decode `data` knowing which field numbers are varints, delimited, or repeated delimited.

    Unknown fields are skipped; a known field with the wrong wire type or a singular field
    that repeats raises MalformedInput.
    """
    varint_set, length_set, repeated_set = set(varints), set(lengths), set(repeated)
    singular: dict[int, FieldValue] = {}
    repeats: dict[int, list[bytes]] = {number: [] for number in repeated_set}
    for field in iter_fields(data):
        if field.number in repeated_set:
            if field.wire_type != WIRE_LEN or not isinstance(field.value, bytes):
                raise MalformedInput(f"protobuf field {field.number} has the wrong wire type")
            repeats[field.number].append(field.value)
            continue
        expected = (
            WIRE_VARINT
            if field.number in varint_set
            else WIRE_LEN
            if field.number in length_set
            else None
        )
        if expected is None:
            continue
        if field.wire_type != expected:
            raise MalformedInput(f"protobuf field {field.number} has the wrong wire type")
        if field.number in singular:
            raise MalformedInput(f"protobuf field {field.number} repeats")
        singular[field.number] = field.value
    return Message(singular, {number: tuple(values) for number, values in repeats.items()})


def varint_field(number: int, value: int) -> bytes:
    """A varint field, or nothing for the proto3 default 0."""
    if value == 0:
        return b""
    return encode_varint(number << 3 | WIRE_VARINT) + encode_varint(value)


def bytes_field(number: int, value: bytes, *, keep_empty: bool = False) -> bytes:
    """A length-delimited field, or nothing for empty bytes (unless a present empty message)."""
    if not value and not keep_empty:
        return b""
    return encode_varint(number << 3 | WIRE_LEN) + encode_varint(len(value)) + value
