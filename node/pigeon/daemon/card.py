"""The SD card's condition: full or read-only, told to the owner while the node keeps relaying.

An SD card at the end of its life often turns read-only (the kernel remounts ext4 read-only on
write errors, or the card's controller locks itself); a full card refuses new writes. Neither
may stop the node: the router keeps relaying what it holds in memory, what is stored stays as it
was (SQLite rolls a failed write back), and the OLED and the page say what is wrong. The card is
probed with statvfs each time the spool is persisted, because an idle persist writes nothing and
so would never fail on a card that turned read-only.
"""

from __future__ import annotations

import enum
import logging
import os
from pathlib import Path
from typing import Final

from pigeon.daemon.spool_sync import SpoolSync
from pigeon.store.errors import DiskFull, ReadOnlyStore, StoreError

_LOGGER = logging.getLogger(__name__)

# Below this the card counts as full: SQLite needs room for its WAL and a checkpoint to commit.
CARD_MIN_FREE_BYTES: Final = 1024 * 1024


class CardState(enum.Enum):
    """Whether the card takes writes."""

    OK = "ok"
    FULL = "full"
    READ_ONLY = "read-only"


CARD_PROBLEMS: Final = {
    CardState.FULL: "SD card full: new messages are not saved. Relaying from memory.",
    CardState.READ_ONLY: "SD card read-only: new messages are not saved. Relaying from memory.",
}


def probe(path: Path, min_free_bytes: int = CARD_MIN_FREE_BYTES) -> CardState:
    """The condition of the file system holding `path`, as statvfs reports it."""
    stat = os.statvfs(path)
    if stat.f_flag & os.ST_RDONLY:
        return CardState.READ_ONLY
    if stat.f_bavail * stat.f_frsize < min_free_bytes:
        return CardState.FULL
    return CardState.OK


def judge(probed: CardState, error: StoreError | None) -> CardState:
    """The card's state from a probe and the last write's error (None: it succeeded)."""
    if probed is CardState.READ_ONLY or isinstance(error, ReadOnlyStore):
        return CardState.READ_ONLY
    if probed is CardState.FULL or isinstance(error, DiskFull):
        return CardState.FULL
    return CardState.OK


def persist_guarded(sync: SpoolSync, data_root: Path, now: float) -> CardState:
    """Persist the router's state and say how the card is; a full or read-only card is no
    failure (the router keeps its envelopes in memory and the next persist tries again).
    Raises any other StoreError."""
    error: StoreError | None = None
    try:
        sync.persist(now)
    except StoreError as exc:
        error = exc
    state = judge(probe(data_root), error)
    if error is not None and state is CardState.OK:
        raise error
    if error is not None:
        _LOGGER.warning("the router's state was not saved: the SD card is %s", state.value)
    return state
