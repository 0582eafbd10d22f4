"""A budget for first-contact messages, per source and per path (sans-IO: `now` passed in).

A first-contact message comes from someone not identified yet: a HELLO (Noise XX message 1)
today, an Olm prekey message once the app's sessions arrive. Anyone holding the owner's card can
write one, each costs public-key work and pending state, and a HELLO makes the node answer into
the mesh. So each is charged twice before any of that work: to its *path* (the mesh, or the
owner's relay mailboxes) and to its *source* on that path (a relay URL; a neighbour when the
path can name it, else the path as a whole). Both are token buckets; a message goes ahead only
if its source has a token, then only if its path has one (a refusal by the path still spends
the source's token, so one flooding source can starve only itself and its path, never another
path). Sources are remembered least-recently-used first, at most `max_sources`.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from pigeon.mesh.ratelimit import TokenBucket

MESH_PATH: Final = "mesh"
RELAY_PATH: Final = "relay"


@dataclass(frozen=True, slots=True)
class Source:
    """Where an input came from: its path, and who on that path ("" if it cannot tell)."""

    path: str
    origin: str = ""


MESH: Final = Source(MESH_PATH)


def relay_source(url: str) -> Source:
    """The source of an envelope read from the owner's mailbox at relay `url`."""
    return Source(RELAY_PATH, url)


@dataclass(frozen=True, slots=True)
class FirstContactPolicy:
    """Rates (per second) and bursts of first-contact messages.

    A real first contact is rare (a new contact, or a contact whose session was lost), and an
    initiator repeats its HELLO after `handshake_retry_s` (15 min): a few an hour per path leave
    honest traffic untouched while a flood answers at most `path_burst` at once.
    """

    source_per_s: float = 1 / 120
    source_burst: float = 8.0
    path_per_s: float = 1 / 60
    path_burst: float = 16.0
    max_sources: int = 256

    def __post_init__(self) -> None:
        if any(not value > 0 for value in dataclasses.astuple(self)):
            raise ValueError("every first-contact budget setting must be positive")


class FirstContactBudget:
    """Token buckets per source and per path under one `FirstContactPolicy`."""

    def __init__(self, policy: FirstContactPolicy | None = None) -> None:
        self.policy = policy or FirstContactPolicy()
        self._sources: OrderedDict[Source, TokenBucket] = OrderedDict()
        self._paths: dict[str, TokenBucket] = {}

    def allow(self, source: Source, now: float) -> bool:
        """Spend one first-contact message of `source` (and of its path); False if over budget."""
        policy = self.policy
        bucket = self._sources.pop(source, None)
        if bucket is None:
            bucket = TokenBucket(policy.source_per_s, policy.source_burst)
        self._sources[source] = bucket  # most recent last
        while len(self._sources) > policy.max_sources:
            self._sources.popitem(last=False)
        if not bucket.take(now):
            return False
        path = self._paths.get(source.path)
        if path is None:
            path = self._paths[source.path] = TokenBucket(policy.path_per_s, policy.path_burst)
        return path.take(now)
