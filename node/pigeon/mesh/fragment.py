"""Frames: fragments of one encoded packet, each small enough for one BLE write or notify.

Frame layout (big-endian; docs/protocol.md "Frames and fragmentation" is the reference):

    first:        0x10 | message_id u16 | count u16 | total_len u16 | digest 8 | data
    continuation: 0x11 | message_id u16 | index u16 | data

The high nibble of byte 0 is the frame version (1), the low nibble the kind. `digest` is
SHA-256(packet)[:8]: a set whose joined data does not hash to it (mixed messages after a
message-id reuse, a corrupted or forged fragment) is dropped, never returned. Message ids are
per sender and link; fragments of different messages may interleave.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections import OrderedDict
from typing import Final

from pigeon.mesh.errors import MalformedFrame
from pigeon.mesh.packet import MAX_PACKET_LEN

FRAME_VERSION: Final = 1
KIND_FIRST: Final = 0
KIND_CONTINUATION: Final = 1
FIRST_TAG: Final = FRAME_VERSION << 4 | KIND_FIRST
CONTINUATION_TAG: Final = FRAME_VERSION << 4 | KIND_CONTINUATION
DIGEST_LEN: Final = 8
MIN_FRAME_LIMIT: Final = 20  # ATT payload at the BLE minimum MTU of 23
MAX_MESSAGE_ID: Final = 0xFFFF

_FIRST: Final = struct.Struct(f">BHHH{DIGEST_LEN}s")
_CONTINUATION: Final = struct.Struct(">BHH")
FIRST_HEADER_LEN: Final = _FIRST.size
CONTINUATION_HEADER_LEN: Final = _CONTINUATION.size

REASSEMBLY_TIMEOUT_S: Final = 30.0
# Charged per held fragment on top of its data, roughly CPython's cost of a small bytes object
# and its dict slot, so a flood of tiny frames cannot hide behind a small byte count.
FRAGMENT_OVERHEAD_BYTES: Final = 64
# An 8 KiB packet cut into 20-byte frames costs about 44 KiB with overhead: a neighbour may
# have two such (or dozens of 244-byte-frame packets) in flight.
PER_PEER_MAX_BYTES: Final = 96 * 1024
TOTAL_MAX_BYTES: Final = 2 * 1024 * 1024
# `add` expires old partials itself, at most this often; `expire` is exact.
EXPIRY_CHECK_INTERVAL_S: Final = 1.0
# Remembered completions, so late duplicate frames neither re-deliver nor linger as partials.
MAX_COMPLETED: Final = 4096


_sha256: Final = hashlib.sha256


def _digest(packet: bytes) -> bytes:
    return _sha256(packet).digest()[:DIGEST_LEN]


def fragment(packet_bytes: bytes, frame_limit: int, message_id: int) -> list[bytes]:
    """Cut `packet_bytes` into frames of at most `frame_limit` bytes.

    Raises ValueError if the packet is empty or longer than MAX_PACKET_LEN, the frame limit is
    below MIN_FRAME_LIMIT, or `message_id` is not a u16.
    """
    size = len(packet_bytes)
    if not 0 < size <= MAX_PACKET_LEN:
        raise ValueError(f"packet length {size} outside 1..{MAX_PACKET_LEN}")
    if frame_limit < MIN_FRAME_LIMIT:
        raise ValueError(f"frame limit {frame_limit} below {MIN_FRAME_LIMIT}")
    if not 0 <= message_id <= MAX_MESSAGE_ID:
        raise ValueError(f"message id {message_id} is not a u16")
    first_room = frame_limit - FIRST_HEADER_LEN
    next_room = frame_limit - CONTINUATION_HEADER_LEN
    rest = max(0, size - first_room)
    count = 1 + -(-rest // next_room)
    digest = _sha256(packet_bytes).digest()[:DIGEST_LEN]  # `_digest`, without a call
    head = _FIRST.pack(FIRST_TAG, message_id, count, size, digest)
    frames = [head + packet_bytes[:first_room]]
    pack_next = _CONTINUATION.pack
    for index in range(1, count):
        start = first_room + (index - 1) * next_room
        chunk = packet_bytes[start : start + next_room]
        frames.append(pack_next(CONTINUATION_TAG, message_id, index) + chunk)
    return frames


@dataclasses.dataclass(frozen=True, slots=True)
class ReassemblyStats:
    """Counters since the reassembler was made; drops are counted per message, not frame."""

    frames: int = 0
    packets: int = 0
    duplicates: int = 0
    timeouts: int = 0
    over_cap: int = 0
    malformed: int = 0
    corrupt: int = 0


@dataclasses.dataclass(slots=True, eq=False)
class _Partial:
    """The fragments of one message seen so far."""

    peer: str
    started: float
    count: int = 0  # 0 until the first frame arrives
    total_len: int = 0
    digest: bytes = b""
    held: int = 0  # bytes charged against the caps
    data_len: int = 0
    pieces: dict[int, bytes] = dataclasses.field(default_factory=dict)


_Key = tuple[str, int]


class Reassembler:
    """Joins frames from neighbours back into packet bytes, with a timeout and memory caps.

    `add` raises MalformedFrame on a frame that does not parse or contradicts its set (the
    set is then dropped); everything else (timeouts, caps, duplicates) is counted in `stats`.
    """

    def __init__(
        self,
        timeout_s: float = REASSEMBLY_TIMEOUT_S,
        per_peer_max_bytes: int = PER_PEER_MAX_BYTES,
        total_max_bytes: int = TOTAL_MAX_BYTES,
    ) -> None:
        if timeout_s <= 0 or per_peer_max_bytes <= 0 or total_max_bytes < per_peer_max_bytes:
            raise ValueError("need timeout_s > 0 and 0 < per_peer_max_bytes <= total_max_bytes")
        self._timeout_s = timeout_s
        self._per_peer_max = per_peer_max_bytes
        self._total_max = total_max_bytes
        self._partials: OrderedDict[_Key, _Partial] = OrderedDict()  # oldest first
        self._completed: OrderedDict[_Key, tuple[bytes, float]] = OrderedDict()
        self._peer_held: dict[str, int] = {}
        self._total_held = 0
        self._next_expiry = float("-inf")
        self._counts = dict.fromkeys(
            ("frames", "packets", "duplicates", "timeouts", "over_cap", "malformed", "corrupt"), 0
        )

    @property
    def stats(self) -> ReassemblyStats:
        """A snapshot of the counters."""
        return ReassemblyStats(**self._counts)

    @property
    def bytes_held(self) -> int:
        """Bytes charged by partial messages now (data plus per-fragment overhead)."""
        return self._total_held

    def __len__(self) -> int:
        return len(self._partials)

    def add(self, peer: str, frame: bytes, now: float) -> bytes | None:
        """Take one frame from `peer`; return the packet bytes when this frame completes one."""
        self._counts["frames"] += 1
        if now >= self._next_expiry:
            self.expire(now)
        size = len(frame)
        tag = frame[0] if size else -1
        if tag == CONTINUATION_TAG and size > CONTINUATION_HEADER_LEN:  # most frames: inline
            _, message_id, index = _CONTINUATION.unpack_from(frame)
            if index == 0:
                raise self._malformed("continuation frame has index 0")
            key = (peer, message_id)
            if key in self._completed:  # a late copy of a frame of a message already done
                self._counts["duplicates"] += 1
                return None
            partial = self._partials.get(key)
            if partial is None:
                partial = self._partials[key] = _Partial(peer, now)
            elif partial.count and index >= partial.count:
                raise self._drop_corrupt(key, f"index {index} beyond count {partial.count}")
            if index in partial.pieces:
                self._counts["duplicates"] += 1
                return None
            return self._store(key, partial, index, frame[CONTINUATION_HEADER_LEN:], now)
        if tag == FIRST_TAG and size > FIRST_HEADER_LEN:
            _, message_id, count, total_len, digest = _FIRST.unpack_from(frame)
            data_len = size - FIRST_HEADER_LEN
            if not (
                0 < count <= total_len <= MAX_PACKET_LEN
                and data_len <= total_len
                and (count != 1 or data_len == total_len)
            ):
                self._check_first(count, total_len, data_len)  # raises, naming the fault
            if count == 1:
                return self._single(peer, message_id, frame[FIRST_HEADER_LEN:], digest, now)
            return self._add_first(peer, message_id, count, total_len, digest, frame, now)
        raise self._malformed(_header_fault(frame))

    def expire(self, now: float) -> int:
        """Drop partial messages older than the timeout; return how many were dropped."""
        self._next_expiry = now + EXPIRY_CHECK_INTERVAL_S
        deadline = now - self._timeout_s
        dropped = 0
        partials = self._partials
        while partials:
            key, partial = next(iter(partials.items()))
            if partial.started > deadline:
                break
            self._discard(key)
            dropped += 1
        completed = self._completed
        while completed and next(iter(completed.values()))[1] <= deadline:
            completed.popitem(last=False)
        self._counts["timeouts"] += dropped
        return dropped

    def drop_peer(self, peer: str) -> int:
        """Forget everything from `peer` (its link went down); return partials dropped."""
        keys = [key for key in self._partials if key[0] == peer]
        for key in keys:
            self._discard(key)
        for key in [key for key in self._completed if key[0] == peer]:
            del self._completed[key]
        return len(keys)

    def _malformed(self, fault: str) -> MalformedFrame:
        self._counts["malformed"] += 1
        return MalformedFrame(fault)

    def _check_first(self, count: int, total_len: int, data_len: int) -> None:
        if not 0 < total_len <= MAX_PACKET_LEN:
            raise self._malformed(f"total_len {total_len} outside 1..{MAX_PACKET_LEN}")
        if not 0 < count <= total_len:
            raise self._malformed(f"count {count} outside 1..total_len")
        if data_len > total_len or (count == 1 and data_len != total_len):
            raise self._malformed(f"first frame carries {data_len} of {total_len} bytes")

    def _single(
        self, peer: str, message_id: int, packet: bytes, digest: bytes, now: float
    ) -> bytes | None:
        key = (peer, message_id)
        self._completed.pop(key, None)  # a resend: see `_add_first`
        self._discard(key)  # a stale partial under a reused id
        if _digest(packet) != digest:
            self._counts["corrupt"] += 1
            raise MalformedFrame("single-frame packet does not match its digest")
        return self._complete(key, digest, packet, now)

    def _add_first(
        self,
        peer: str,
        message_id: int,
        count: int,
        total_len: int,
        digest: bytes,
        frame: bytes,
        now: float,
    ) -> bytes | None:
        key = (peer, message_id)
        # A message completed under this id starts again with its first frame: a resend goes
        # under the id of the send before it, and if that one arrived whole, its sender did not
        # hear our ack; returned again when whole, the packet is acked again.
        self._completed.pop(key, None)
        partial = self._partials.get(key)
        if partial is not None and partial.count:
            if partial.digest == digest and partial.total_len == total_len:
                self._counts["duplicates"] += 1
                return None
            self._discard(key)  # a different message under a reused id
            partial = None
        if partial is None:
            partial = self._partials[key] = _Partial(peer, now)
        partial.count, partial.total_len, partial.digest = count, total_len, digest
        if partial.pieces and max(partial.pieces) >= count:
            raise self._drop_corrupt(key, "continuation index beyond the first frame's count")
        return self._store(key, partial, 0, frame[FIRST_HEADER_LEN:], now)

    def _store(
        self, key: _Key, partial: _Partial, index: int, piece: bytes, now: float
    ) -> bytes | None:
        piece_len = len(piece)
        cost = piece_len + FRAGMENT_OVERHEAD_BYTES
        peer = partial.peer
        peer_held = self._peer_held
        held = peer_held.get(peer, 0)
        # Both caps are checked here first: evicting is rare, the call to do it is not free.
        if held + cost > self._per_peer_max or self._total_held + cost > self._total_max:
            if not self._make_room(key, peer, cost):
                return None
            held = peer_held.get(peer, 0)
        pieces = partial.pieces
        pieces[index] = piece
        partial.held += cost
        partial.data_len += piece_len
        peer_held[peer] = held + cost
        self._total_held += cost
        count = partial.count
        if count and partial.data_len > partial.total_len:
            raise self._drop_corrupt(key, "fragments carry more bytes than total_len")
        if not count or len(pieces) < count:
            return None
        packet = b"".join(map(pieces.__getitem__, range(count)))
        digest = partial.digest
        self._discard(key)
        if len(packet) != partial.total_len or _sha256(packet).digest()[:DIGEST_LEN] != digest:
            self._counts["corrupt"] += 1
            raise MalformedFrame("reassembled packet does not match its length or digest")
        return self._complete(key, digest, packet, now)

    def _make_room(self, key: _Key, peer: str, cost: int) -> bool:
        """Evict older partials until `cost` more bytes fit both caps; False drops `key`."""
        while self._peer_held.get(peer, 0) + cost > self._per_peer_max:
            victim = next((k for k in self._partials if k[0] == peer and k != key), None)
            if victim is None:
                return self._drop_over_cap(key)
            self._drop_over_cap(victim)
        while self._total_held + cost > self._total_max:
            victim = next((k for k in self._partials if k != key), None)
            if victim is None:
                return self._drop_over_cap(key)
            self._drop_over_cap(victim)
        return True

    def _drop_over_cap(self, key: _Key) -> bool:
        self._discard(key)
        self._counts["over_cap"] += 1
        return False

    def _drop_corrupt(self, key: _Key, fault: str) -> MalformedFrame:
        self._discard(key)
        self._counts["corrupt"] += 1
        return MalformedFrame(fault)

    def _complete(self, key: _Key, digest: bytes, packet: bytes, now: float) -> bytes:
        completed = self._completed
        completed[key] = (digest, now)
        completed.move_to_end(key)
        if len(completed) > MAX_COMPLETED:
            completed.popitem(last=False)
        self._counts["packets"] += 1
        return packet

    def _discard(self, key: _Key) -> None:
        partial = self._partials.pop(key, None)
        if partial is None:
            return
        self._total_held -= partial.held
        left = self._peer_held[partial.peer] - partial.held
        if left:
            self._peer_held[partial.peer] = left
        else:
            del self._peer_held[partial.peer]


def _header_fault(frame: bytes) -> str:
    """Why a frame's header does not parse (called only for frames that failed to)."""
    if not frame:
        return "frame empty"
    if frame[0] >> 4 != FRAME_VERSION:
        return f"frame version {frame[0] >> 4} unsupported, expected {FRAME_VERSION}"
    kind = frame[0] & 0x0F
    if kind == KIND_FIRST:
        return f"first frame truncated: {len(frame)} bytes, header {FIRST_HEADER_LEN} + data"
    if kind == KIND_CONTINUATION:
        return (
            f"continuation frame truncated: {len(frame)} bytes, header "
            f"{CONTINUATION_HEADER_LEN} + data"
        )
    return f"frame kind {kind} unknown"
