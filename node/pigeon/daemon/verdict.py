"""The verdict a router's drops give on one received frame, for the transport's link slots.

A frame is refused when the router dropped what came of it as malformed or oversized (it counts
against the link, `transport.ble.eviction`), ignored when it was only a duplicate or over the
sender's rate (the link carried nothing new), and useful otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

from pigeon.transport.base import FrameVerdict


def frame_verdict(
    drops: Iterable[tuple[str, str | None]],
    peer: str,
    refused: frozenset[str],
    ignored: frozenset[str],
) -> FrameVerdict:
    """The verdict on a frame from `peer`, given the (reason, link) of each drop it caused."""
    reasons = {reason for reason, link in drops if link == peer}
    if reasons & refused:
        return FrameVerdict.REFUSED
    if reasons & ignored:
        return FrameVerdict.IGNORED
    return FrameVerdict.USEFUL
