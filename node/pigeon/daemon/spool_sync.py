"""Persisting the router's state in the spool database: its seen-cache and the envelopes it carries.

`sync_ops` is pure: given what the router carries, which packet ids the database holds and which
of those this run's router ever carried, it returns the batch that stores the new, drops what the
router let go (delivered, evicted, expired), expires the rest by time, and saves the seen-cache.
At start-up `SpoolSync.restore` hands the envelopes stored by an earlier run back to the router
(`Router.restore`); any the router does not take (expired, refused) stay until they expire. The
daemon applies the batch periodically and at shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Set

from pigeon.mesh.dedup import SeenCache
from pigeon.mesh.errors import CorruptState
from pigeon.mesh.router import Carried, Router, RouterConfig
from pigeon.store.spool_db import (
    DropEnvelope,
    ExpireEnvelopes,
    SaveSeenCache,
    Spool,
    SpooledEnvelope,
    SpoolOp,
    StoreEnvelope,
)

_LOGGER = logging.getLogger(__name__)

CARRIED_DEPOSITOR = "mesh"  # the database keeps no neighbour ids: they are per-session anyway


def load_seen_cache(spool: Spool, config: RouterConfig) -> SeenCache | None:
    """The persisted seen-cache under the router's limits; None (logged) if absent or damaged."""
    blob = spool.seen_cache()
    if blob is None:
        return None
    try:
        return SeenCache.from_bytes(blob, config.seen_ttl_s, config.seen_max_entries)
    except CorruptState as exc:
        _LOGGER.warning("the saved seen-cache is unusable (%s); starting with an empty one", exc)
        return None


def sync_ops(
    carried: Iterable[Carried],
    stored_ids: Set[bytes],
    ever_carried: Set[bytes],
    seen: SeenCache,
    now: float,
    saved_seen: bytes | None = None,
) -> list[SpoolOp]:
    """The batch that stores `carried`, drops what the router let go and saves `seen` unless
    its encoding is `saved_seen`, the one stored already."""
    ops: list[SpoolOp] = []
    keep: set[bytes] = set()
    for item in carried:
        packet = item.packet
        keep.add(packet.packet_id)
        if packet.packet_id in stored_ids:
            continue
        envelope = SpooledEnvelope(
            packet_id=packet.packet_id,
            recipient_tag=packet.recipient_tag,
            depositor=CARRIED_DEPOSITOR,
            priority=item.priority,
            expires_at=float(packet.expires_at_s),
            receipt_hash=packet.receipt_hash or None,
            packet=item.encoded,
            stored_at=now,
        )
        ops.append(StoreEnvelope(envelope))
    ops.extend(DropEnvelope(packet_id) for packet_id in (stored_ids & ever_carried) - keep)
    ops.append(ExpireEnvelopes(now))
    blob = seen.to_bytes()
    # An idle node's seen-cache does not change: rewriting it every minute was most of what an
    # idle node wrote to its SD card (WAL frames, checkpoint, journal commit, each synced).
    if blob != saved_seen:
        ops.append(SaveSeenCache(blob, now))
    return ops


def carried_ids(spool: Spool) -> set[bytes]:
    """Packet ids of envelopes for others the database holds (not those held for the owner)."""
    return {entry.packet_id for entry in spool.entries() if not entry.held_for_owner}


class SpoolSync:
    """Keeps the spool database in step with one router for the life of the process."""

    def __init__(self, router: Router, spool: Spool) -> None:
        self._router = router
        self._spool = spool
        self._ever_carried: set[bytes] = set()
        self._saved_seen = spool.seen_cache()

    def restore(self, now: float) -> int:
        """Give the router back every envelope an earlier run stored; return how many it took."""
        taken = 0
        for entry in self._spool.entries():
            if entry.held_for_owner:
                continue
            stored = self._spool.envelope(entry.packet_id)
            if stored is not None and self._router.restore(stored.packet, now):
                self._ever_carried.add(entry.packet_id)
                taken += 1
        _LOGGER.info("restored %d carried envelopes from the spool", taken)
        return taken

    def persist(self, now: float) -> None:
        """Write the router's carried packets and seen-cache in one transaction.

        Raises StoreError (DiskFull, CorruptStore, ...).
        """
        carried = self._router.carried_packets()
        carried_now = {c.packet.packet_id for c in carried}
        ever_carried = self._ever_carried | carried_now
        ops = sync_ops(
            carried,
            carried_ids(self._spool),
            ever_carried,
            self._router.seen,
            now,
            self._saved_seen,
        )
        result = self._spool.apply(ops)
        self._ever_carried = carried_now  # the rest of `ever_carried` was dropped just now
        self._saved_seen = next(
            (op.blob for op in ops if isinstance(op, SaveSeenCache)), self._saved_seen
        )
        _LOGGER.debug(
            "spool synced: %d stored, %d dropped, %d expired",
            result.stored,
            result.dropped,
            result.expired,
        )
