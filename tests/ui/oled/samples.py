"""Sample views of every screen, shared by the golden-image and machine tests."""

from __future__ import annotations

import datetime
import hashlib
from typing import Final

from pigeon.ui.oled.state import AppMeshLine, CourierLine, GatewayLine, Message, Uplink
from pigeon.ui.oled.views import (
    BitchatMailView,
    ErrorView,
    LockedView,
    MessageListView,
    MessageView,
    PairingClosedView,
    PairingView,
    ResetView,
    SaverView,
    ScreenView,
    StatusView,
)

TODAY: Final = datetime.date(2026, 11, 21)
URL: Final = "https://pigeon-a1b2.local:8443/"
CERT: Final = hashlib.sha256(b"sample certificate").digest()


def message(
    index: int, sender: str, text: str, day: int, hour: int, minute: int, unread: bool
) -> Message:
    """A received message with id m<index>."""
    at = datetime.datetime(2026, 11, day, hour, minute)
    return Message(f"m{index}", sender, text, at, unread)


MESSAGES: Final = (
    message(
        0,
        "Alice",
        "Are you coming to the market tomorrow? We could meet at the north gate around ten, "
        "bring the big basket.",
        21,
        14,
        5,
        True,
    ),
    message(1, "Bob Marley-Featherstonehaugh", "ok", 21, 9, 41, True),
    message(2, "Привет Мир", "Привет! Как дела?\nÜnïcödé çà va ☃ 你好", 20, 18, 0, False),
    message(3, "Carol", "See you", 3, 7, 7, False),
    message(4, "Dave", "x", 2, 7, 7, False),
    message(5, "Eve", "y", 1, 7, 7, False),
    message(6, "Frank", "z", 1, 7, 7, False),
)

# The demo's answers: one sender, one minute, told apart only by their text.
SAME_SENDER: Final = tuple(
    message(10 + i, "Robin", f"Robin got: {text}", 21, 18, 54, i == 0)
    for i, text in enumerate(("where are you?", "hello", "see you at noon"))
)

SCREENS: Final[dict[str, ScreenView]] = {
    "status_online": StatusView(
        "pigeon-a1b2", 4, 12, 48_213, Uplink.ONLINE, 3, False, AppMeshLine(2, 153, 12)
    ),
    "status_first_boot": StatusView("pigeon-a1b2", 0, 0, 0, Uplink.OFFLINE, 0, True, AppMeshLine()),
    "status_connecting": StatusView(
        "pigeon-with-a-very-long-node-name",
        1,
        1,
        1_530_000,
        Uplink.CONNECTING,
        120,
        False,
        AppMeshLine(11, 12_345, 1_234_567),
    ),
    "status_app_mesh_off": StatusView("pigeon-a1b2", 4, 12, 48_213, Uplink.ONLINE, 3, False),
    "status_bitchat": StatusView(
        "pigeon-a1b2", 4, 12, 48_213, Uplink.ONLINE, 3, False, AppMeshLine(2, 153, 12), 3
    ),
    "status_bitchat_courier": StatusView(
        "pigeon-a1b2", 4, 12, 48_213, Uplink.ONLINE, 3, False, AppMeshLine(2, 153, 12), 3, 1_234
    ),
    "status_bitchat_gateway": StatusView(
        "pigeon-a1b2", 4, 12, 48_213, Uplink.ONLINE, 3, False, AppMeshLine(2, 153, 12), 3, 1_234, 57
    ),
    "status_bitchat_courier_only": StatusView(
        "pigeon-a1b2", 4, 0, 0, Uplink.ONLINE, 0, False, None, 3, 27
    ),
    "bitchat_mail": BitchatMailView(CourierLine(1_234, 56, 7, 12_345), GatewayLine(57, 3)),
    "bitchat_mail_courier_only": BitchatMailView(CourierLine(3), None),
    "bitchat_mail_gateway_only": BitchatMailView(None, GatewayLine(1_500_000, 0)),
    "list_top": MessageListView(MESSAGES, 1, 0, TODAY),
    "list_end": MessageListView(MESSAGES, 6, 5, TODAY),
    "list_empty": MessageListView((), 0, 0, TODAY),
    "list_same_sender": MessageListView(SAME_SENDER, 0, 0, TODAY),
    "list_12h": MessageListView(MESSAGES, 0, 0, TODAY, twelve_hour=True),
    "message_top": MessageView(MESSAGES[0], 0, TODAY),
    "message_scrolled": MessageView(MESSAGES[0], 2, TODAY),
    "message_unicode": MessageView(MESSAGES[2], 0, TODAY),
    "message_12h": MessageView(SAME_SENDER[0], 0, TODAY, twelve_hour=True),
    "message_empty": MessageView(message(9, "Zoë", " \n\t", 21, 0, 0, False), 0, TODAY),
    "pairing": PairingView("493817", URL, CERT, 105),
    "pairing_long_url": PairingView(
        "000000", "https://pigeon-a1b2.local:8443/pair?from=oled", CERT, 9
    ),
    "pairing_closed": PairingClosedView(5),
    "locked": LockedView("pigeon-a1b2", URL, 1),
    "reset": ResetView(URL),
    "error": ErrorView("Bluetooth adapter hci0 not found; relaying is paused until it returns."),
    "error_long": ErrorView("word " * 40),
    "saver_unread": SaverView(3, 5),
    "saver_idle": SaverView(0, 2),
}
