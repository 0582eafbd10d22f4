"""The owner's app contacts on the app's mesh: app envelopes in and out of the messenger.

The messenger is sans-IO and returns app envelopes (`AppOutgoing`); this wraps each in an app
mesh packet the node originates (TTL 8, a fresh random id, as the app does) and hands it to the
app router, which floods it and keeps it in short custody for a phone not in range yet. The
router hands back packets whose envelope names the owner's Ed25519 key (`ServeKeys` while the
vault is open); their envelopes go to the messenger, and what it answers (acks, waiting texts)
goes out the same way. `publish` (optional) also gives each envelope to the app relays the
contact's card signed, for contacts out of radio range.

The app sends the same packet (one packet id) by radio and to each of the owner's relays for
everything but texts (its `SessionManager.sendEnvelope`), and dedups across its links by packet
id; so does the owner's endpoint: every packet goes to the messenger with its id, which it
claims in the vault once Olm opened it, so a copy by another path (by radio the router's
seen-cache catches repeats, but a mailbox read bypasses the router) is dropped unread. A second
copy would reach Olm with its message key spent, fail, and start a new session for every ack.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence

from pigeon.appmesh.errors import AppMeshError
from pigeon.appmesh.packet import DEFAULT_TTL, ID_SIZE, AppPacket, decode_packet, encode_packet
from pigeon.daemon.appmesh_driver import AppMeshDriver
from pigeon.messenger.api import AppOutgoing, Messenger, MessengerError

_LOGGER = logging.getLogger(__name__)

Publish = Callable[[AppOutgoing, bytes], None]  # (envelope and its relays, whole packet)


class AppEndpoint:
    """Connects one messenger's app contacts to one app-mesh driver."""

    def __init__(
        self,
        messenger: Messenger,
        driver: AppMeshDriver,
        *,
        publish: Publish | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.messenger = messenger
        self._driver = driver
        self._publish = publish
        self._clock = clock
        self._rng = rng
        self._served: bytes | None = None

    def set_publish(self, publish: Publish | None) -> None:
        """Where envelopes for contacts with signed relays also go from now on (None: mesh only)."""
        self._publish = publish

    def refresh(self) -> None:
        """Serve the owner's key while the vault is open (call after a lock change)."""
        key = None if self.messenger.is_locked else self.messenger.own_identity_key()
        if key != self._served:
            self._served = key
            deliver = None if key is None else self.deliver
            self._driver.set_deliver(deliver, frozenset() if key is None else frozenset({key}))

    def pump(self) -> None:
        """Send what the messenger produced since the last call."""
        self.send(self.messenger.take_app_outgoing())

    def send(self, outgoing: Sequence[AppOutgoing]) -> None:
        """Originate each envelope as an app mesh packet (and publish it, if configured)."""
        for item in outgoing:
            packet = encode_packet(AppPacket(DEFAULT_TTL, self._rng(ID_SIZE), item.envelope))
            self._driver.originate(packet)
            if self._publish is not None and item.relay_urls:
                self._publish(item, packet)

    def deliver(self, packet: bytes) -> bool:
        """A packet for the owner's key (from the router or the owner's app mailbox); False if
        it should stay where it came from (the vault is locked or refused it). A packet the
        owner already took by another path is consumed unread (by the messenger)."""
        try:
            decoded = decode_packet(packet)
        except AppMeshError:
            return True  # junk can never become readable
        if self.messenger.is_locked:
            return False
        try:
            outgoing = self.messenger.handle_app_envelope(
                decoded.payload, self._clock(), decoded.packet_id
            )
        except MessengerError as exc:  # the vault refused: the app resends, nothing acked
            _LOGGER.warning("an app envelope for the owner was not stored: %s", exc)
            return False
        self.send(outgoing)
        return True
