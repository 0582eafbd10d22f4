"""Per-neighbour send queue: packets by priority class, cut into frames, a window at a time.

The router keeps queues itself (rather than pushing everything into the transport) so that a
receipt or a text overtakes a file transfer queued earlier, so that a packet the neighbour
turns out to have already can be cancelled before it is sent, and so that a link that goes
down costs nothing for what was never sent. The transport reports each finished frame
(`FrameSent`), which frees one slot of the window.
"""

from __future__ import annotations

from typing import Final

from pigeon.mesh.fragment import MAX_MESSAGE_ID, fragment
from pigeon.mesh.packet import Priority

PRIORITY_CLASSES: Final = len(Priority)
# Each class has an urgent lane (e.g. an envelope for the neighbour itself) ahead of the rest.
_LANES: Final = 2 * PRIORITY_CLASSES


class Outbox:
    """Packets waiting for one neighbour; `pull` returns the frames that may go now."""

    __slots__ = (
        "_frames",
        "_in_flight",
        "_lane_of",
        "_lanes",
        "_message_id",
        "_reused",
        "_started",
        "_window",
        "frame_limit",
        "max_packets",
    )

    def __init__(
        self, frame_limit: int, window: int, max_packets: int, first_message_id: int
    ) -> None:
        if window < 1 or max_packets < 1:
            raise ValueError("window and max_packets must be at least 1")
        self.frame_limit = frame_limit
        self.max_packets = max_packets
        self._window = window
        self._lanes: tuple[dict[bytes, bytes], ...] = tuple({} for _ in range(_LANES))
        self._lane_of: dict[bytes, dict[bytes, bytes]] = {}  # queued id -> its lane
        self._frames: list[bytes] = []  # cut from started packets, not yet pulled
        self._in_flight = 0
        self._message_id = first_message_id & MAX_MESSAGE_ID
        self._reused: dict[bytes, int] = {}  # queued id -> the message id it goes under again
        self._started: list[tuple[bytes, bytes, int, int]] = []

    def __len__(self) -> int:
        return len(self._lane_of)

    def __contains__(self, packet_id: bytes) -> bool:
        return packet_id in self._lane_of

    @property
    def idle(self) -> bool:
        """Nothing queued, being cut into frames, or in flight."""
        return not self._in_flight and not self._frames and not self._lane_of

    def put(
        self,
        packet_id: bytes,
        encoded: bytes,
        priority: int,
        urgent: bool = False,
        message_id: int | None = None,
    ) -> bool:
        """Queue a packet unless it is already queued or the outbox is full. `message_id`: a
        resend goes under the message id of its last send, so that the neighbour joins its
        frames to the ones it already holds (else it gets the next id)."""
        lane_of = self._lane_of
        if packet_id in lane_of or len(lane_of) >= self.max_packets:
            return False
        lane = self._lanes[2 * priority + (0 if urgent else 1)]
        lane[packet_id] = encoded
        lane_of[packet_id] = lane
        if message_id is not None:
            self._reused[packet_id] = message_id
        return True

    def queued_ids(self) -> list[bytes]:
        """The ids of packets still waiting (not yet cut into frames), in sending order."""
        return [packet_id for lane in self._lanes for packet_id in lane]

    def cancel(self, packet_id: bytes) -> bool:
        """Unqueue a packet that has not started to go out; True if it was queued."""
        lane = self._lane_of.pop(packet_id, None)
        if lane is None:
            return False
        del lane[packet_id]
        self._reused.pop(packet_id, None)
        return True

    def pull(self) -> list[bytes]:
        """Frames to hand to the transport now, within the window."""
        free = self._window - self._in_flight
        frames = self._frames
        lane_of = self._lane_of
        if free <= 0 or not (frames or lane_of):
            return []
        lanes = self._lanes
        while len(frames) < free and lane_of:  # cut the next queued packet into frames
            index = 0
            while not lanes[index]:  # one is not empty: `lane_of` names a packet in it
                index += 1
            lane = lanes[index]
            packet_id = next(iter(lane))
            encoded = lane.pop(packet_id)
            del lane_of[packet_id]
            message_id = self._reused.pop(packet_id, None) if self._reused else None
            if message_id is None:
                message_id = self._message_id
                self._message_id = (message_id + 1) & MAX_MESSAGE_ID
            self._started.append((packet_id, encoded, index >> 1, message_id))
            frames += fragment(encoded, self.frame_limit, message_id)
        out = frames[:free]
        del frames[:free]
        self._in_flight += len(out)
        return out

    def take_started(self) -> list[tuple[bytes, bytes, int, int]]:
        """(id, encoded, priority, message id) of packets cut into frames since the last call,
        in order."""
        started, self._started = self._started, []
        return started

    def sent(self) -> bool:
        """One frame handed out earlier is done (sent or failed); True if `pull` may now
        return frames."""
        if self._in_flight:
            self._in_flight -= 1
        return bool(self._frames or self._lane_of)
