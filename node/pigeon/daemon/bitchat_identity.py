"""The node's bitchat identity in the spool (SQLCipher under the device key, so the node relays
and announces before the owner unlocks): made once, on first start, never the owner's keys."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Final

from pigeon.bitchat.identity import MAX_NICKNAME_BYTES, BitchatIdentity
from pigeon.store.spool_db import Spool

_LOGGER = logging.getLogger(__name__)

SECRET_NAME: Final = "bitchat-identity"
# The bitchat peer the owner's page posts as: not the node (whose nickname is its name), not the
# owner's Pigeon identity; one stable id so phones keep its nickname between posts.
PAGE_SECRET_NAME: Final = "bitchat-page-identity"


def load_or_create_bitchat_identity(
    spool: Spool,
    now: float,
    random_bytes: Callable[[int], bytes] = os.urandom,
    name: str = SECRET_NAME,
) -> BitchatIdentity:
    """The stored identity, or a new one stored durably first. A stored value that does not
    load (a future version) is kept as it is and a fresh identity is used for this run."""
    state = spool.node_secret(name)
    if state is not None:
        try:
            return BitchatIdentity.from_bytes(state)
        except ValueError:
            _LOGGER.error("the stored bitchat identity is not readable; using a temporary one")
            return BitchatIdentity.generate(random_bytes)
    identity = BitchatIdentity.generate(random_bytes)
    spool.put_node_secret(name, identity.to_bytes(), now)
    _LOGGER.info("a bitchat identity was made for this node")
    return identity


def bitchat_nickname(configured: str, node_name: str) -> str:
    """`[bitchat] nickname`, or the node's name cut to bitchat's 24-byte cap."""
    name = configured or node_name
    while len(name.encode()) > MAX_NICKNAME_BYTES:
        name = name[:-1]
    return name
