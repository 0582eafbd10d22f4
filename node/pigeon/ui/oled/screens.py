"""Screens: pure functions from a view to a 128x64 1-bit image (lit pixels are 1)."""

from __future__ import annotations

import datetime
from functools import lru_cache
from typing import Final
from urllib.parse import urlsplit

from PIL import Image, ImageDraw

from pigeon.ui.oled import icons, qr
from pigeon.ui.oled.font import BitmapFont, body_font, large_font, small_font
from pigeon.ui.oled.state import AppMeshLine, Message, Uplink
from pigeon.ui.oled.text import clean, fit, wrap
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

WIDTH: Final = 128
HEIGHT: Final = 64
HEADER_HEIGHT: Final = 11
BODY_TOP: Final = 12
ROW_HEIGHT: Final = 10
BODY_ROWS: Final = 5
LIST_ENTRIES: Final = 2  # messages wholly on the list screen: two lines each, name and text
LIST_ENTRY_HEIGHT: Final = 2 * ROW_HEIGHT
SCROLLBAR_X: Final = 125
TEXT_X: Final = 2
MESSAGE_COLUMNS: Final = 20
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_UPLINK_LABELS: Final = {
    Uplink.OFFLINE: "Offline",
    Uplink.CONNECTING: "Connecting\u2026",
    Uplink.ONLINE: "Online",
}


def render(view: ScreenView) -> Image.Image:
    """Draw `view` into a new 128x64 mode-"1" image."""
    image = Image.new("1", (WIDTH, HEIGHT), 0)
    match view:
        case StatusView():
            _status(image, view)
        case BitchatMailView():
            _bitchat_mail(image, view)
        case MessageListView():
            _message_list(image, view)
        case MessageView():
            _message(image, view)
        case PairingView():
            _pairing(image, view)
        case PairingClosedView():
            _pairing_closed(image, view)
        case LockedView():
            _locked(image, view)
        case ResetView():
            _reset(image, view)
        case ErrorView():
            _error(image, view)
        case SaverView():
            _saver(image, view)
    return image


def message_lines(message: Message) -> tuple[str, ...]:
    """The lines the message screen shows for `message`, before scrolling."""
    return wrap(clean(message.text, body_font()), MESSAGE_COLUMNS) or ("(no text)",)


def preview(message: Message) -> str:
    """The start of a message's text on one line (`_text` cuts it to fit)."""
    return " ".join(message.text.split()) or "(no text)"


def time_label(
    at: datetime.datetime, today: datetime.date | None, twelve_hour: bool = False
) -> str:
    """A message time as "14:05" (or "2:05pm") on `today` (or when the date is unknown), else
    as "3 Nov"."""
    if today is not None and at.date() != today:
        return f"{at.day} {_MONTHS[at.month - 1]}"
    if twelve_hour:
        return f"{(at.hour - 1) % 12 + 1}:{at.minute:02d}{'am' if at.hour < 12 else 'pm'}"
    return f"{at.hour:02d}:{at.minute:02d}"


def _status(image: Image.Image, view: StatusView) -> None:
    badge = f"{view.unread}" if view.unread else ""
    _header(image, view.node_name, badge, icons.ENVELOPE if view.unread else None)
    neighbours = _neighbours_label(view.neighbours, view.bitchat_peers)
    spool = _spool_label(view.spool_envelopes, view.spool_bytes, view.bitchat_held)
    rows = (
        (icons.NEIGHBOURS, neighbours),
        (icons.SPOOL, spool),
        (icons.GLOBE, _uplink_label(view.uplink, view.bitchat_nostr)),
        (icons.PHONE, _app_mesh_label(view.app_mesh)),
    )
    font = body_font()
    for index, (icon, label) in enumerate(rows):
        y = 13 + index * 10
        icons.draw(image, TEXT_X, y + 1, icon)
        _text(image, font, 15, y, label, WIDTH - 15)
    hint = "Hold A for 3 s to pair" if view.show_pair_hint else "Press A for messages"
    _centred(image, small_font(), 55, hint)


def _bitchat_mail(image: Image.Image, view: BitchatMailView) -> None:
    _header(image, "bitchat mail")
    courier, gateway = view.courier, view.gateway
    rows = ["Courier off"]
    if courier is not None:
        rows = [
            f"Held {_count(courier.held)}",
            f"Handed over {_count(courier.handed_over)}",
            f"Expired {_count(courier.expired)}",
            f"Sprayed {_count(courier.sprayed)}",
        ]
    if gateway is None:
        rows.append("Nostr off")
    else:  # published up to the relays, drops fetched down to phones
        rows.append(f"Nostr {_count(gateway.published)}↑ {_count(gateway.fetched)}↓")
    font = body_font()
    for index, label in enumerate(rows):
        _text(image, font, TEXT_X, 13 + index * 10, label, WIDTH - TEXT_X)


def _spool_label(envelopes: int, size: int, bitchat_held: int | None) -> str:
    """ "12 held, 4 KB", "Spool empty"; bitchat mail carried is added when there is some."""
    if not bitchat_held:
        return f"{envelopes} held, {_human_bytes(size)}" if envelopes else "Spool empty"
    if envelopes == 0:
        return f"{bitchat_held} bitchat held"
    return f"{envelopes} held +{bitchat_held} bitchat"


def _uplink_label(uplink: Uplink, bitchat_nostr: int | None) -> str:
    """ "Online"; with the Nostr gateway's traffic, "Online, 7 Nostr" (published and fetched)."""
    label = _UPLINK_LABELS[uplink]
    return f"{label}, {bitchat_nostr} Nostr" if bitchat_nostr else label


def _neighbours_label(nodes: int, bitchat: int | None) -> str:
    """ "4 neighbours", or with bitchat on "4 nodes 3 bitchat" (its phones in range)."""
    if bitchat is not None:
        return f"{nodes} node{'' if nodes == 1 else 's'} {bitchat} bitchat"
    if nodes == 0:
        return "No neighbours"
    return f"{nodes} neighbour{'' if nodes == 1 else 's'}"


def _app_mesh_label(line: AppMeshLine | None) -> str:
    """ "2 app 153⇄ 12↑": the app's phones linked, packets relayed (⇄) and bridged (↑)."""
    if line is None:
        return "App mesh off"
    return f"{line.peers} app {_count(line.relayed)}⇄ {_count(line.bridged)}↑"


def _count(number: int) -> str:
    """A counter in at most 4 characters: 999, 1.2k, 12k, 1.2M."""
    if number < 1000:
        return str(number)
    for unit, scale in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        if number < scale * 10:
            tenths = number * 10 // int(scale)
            return f"{tenths // 10}.{tenths % 10}{unit}"
        if number < scale * 1000:
            return f"{number // int(scale)}{unit}"
    return "many"


def _message_list(image: Image.Image, view: MessageListView) -> None:
    total = len(view.messages)
    _header(image, "Messages", f"{view.selected + 1}/{total}" if total else "")
    if not total:
        _centred(image, body_font(), 32, "No messages yet")
        return
    font = body_font()
    draw = ImageDraw.Draw(image)
    right = SCROLLBAR_X - 2 if total > LIST_ENTRIES else WIDTH - 1
    # Whole entries, then the top line of the next one as a hint that the list goes on.
    for row, message in enumerate(view.messages[view.top : view.top + LIST_ENTRIES + 1]):
        y = BODY_TOP + row * LIST_ENTRY_HEIGHT
        ink = 1
        if view.top + row == view.selected:
            draw.rectangle((0, y, right, min(y + LIST_ENTRY_HEIGHT, HEIGHT) - 1), fill=1)
            ink = 0
        if message.unread:
            icons.draw(image, TEXT_X, y + 3, icons.DOT, ink)
        when = time_label(message.received_at, view.today, view.twelve_hour)
        when_x = right - 1 - font.width(when)
        font.draw(image, when_x, y, when, ink)
        name_x = TEXT_X + 6
        _text(image, font, name_x, y, message.sender, when_x - name_x - 4, ink)
        if y + LIST_ENTRY_HEIGHT <= HEIGHT:  # the hint entry shows its top line only
            _text(image, font, name_x, y + ROW_HEIGHT, preview(message), right - name_x - 1, ink)
    _scrollbar(image, view.top, LIST_ENTRIES, total)


def _message(image: Image.Image, view: MessageView) -> None:
    when = time_label(view.message.received_at, view.today, view.twelve_hour)
    _header(image, view.message.sender, when)
    lines = message_lines(view.message)
    font = body_font()
    for row, line in enumerate(lines[view.scroll : view.scroll + BODY_ROWS]):
        font.draw(image, TEXT_X, BODY_TOP + row * ROW_HEIGHT, line)
    _scrollbar(image, view.scroll, BODY_ROWS, len(lines))


def _pairing(image: Image.Image, view: PairingView) -> None:
    symbol = qr.encode(view.url)
    _draw_qr(image, symbol)
    column_x = qr.AREA_PX + 2
    column_width = WIDTH - column_x
    minutes, seconds = divmod(max(view.seconds_left, 0), 60)
    _centred(image, body_font(), 1, f"Pair {minutes}:{seconds:02d}", column_x, column_width)
    _centred(image, large_font(), 12, view.code, column_x, column_width)
    small = small_font()
    _centred(image, small, 36, "TLS cert", column_x, column_width)
    fingerprint = view.cert_sha256[:8].hex().upper()
    for index, half in enumerate((fingerprint[:8], fingerprint[8:])):
        spaced = " ".join(half[i : i + 2] for i in range(0, len(half), 2))
        _centred(image, small, 46 + index * 9, spaced, column_x, column_width)


def _pairing_closed(image: Image.Image, view: PairingClosedView) -> None:
    _header(image, "Pairing closed", icon=icons.WARNING, icon_left=True)
    font = body_font()
    text = f"{view.wrong_codes} wrong codes were typed on the page. Was that you?"
    for row, line in enumerate(wrap(text, 21)[:3]):
        font.draw(image, TEXT_X - 1, 13 + row * ROW_HEIGHT, line)
    _centred(image, small_font(), 45, "Hold A 3 s for a new code")
    _centred(image, small_font(), 55, "Press a button to dismiss")


def _draw_qr(image: Image.Image, symbol: qr.QrMatrix) -> None:
    image.paste(_qr_area(symbol), (0, 0))


@lru_cache(maxsize=4)
def _qr_area(symbol: qr.QrMatrix) -> Image.Image:
    # Lit square with dark modules; cached because the pairing screen redraws every second.
    area = Image.new("1", (qr.AREA_PX, qr.AREA_PX), 1)
    draw = ImageDraw.Draw(area)
    offset = (qr.AREA_PX - symbol.size_px) // 2
    scale = symbol.scale
    for row_index, row in enumerate(symbol.rows):
        y = offset + row_index * scale
        for column, dark in enumerate(row):
            if dark:
                x = offset + column * scale
                draw.rectangle((x, y, x + scale - 1, y + scale - 1), fill=0)
    return area


def _locked(image: Image.Image, view: LockedView) -> None:
    _header(image, view.node_name)
    icons.draw(image, 6, 17, icons.LOCK)
    font = body_font()
    text_x = 26
    _text(image, font, text_x, 14, "Vault locked", WIDTH - text_x)
    _text(image, font, text_x, 25, "Unlock it at", WIDTH - text_x)
    _centred(image, small_font(), 39, _host(view.web_url))
    noun = "neighbour" if view.neighbours == 1 else "neighbours"
    _centred(image, small_font(), 55, f"Relaying: {view.neighbours} {noun}")


def _reset(image: Image.Image, view: ResetView) -> None:
    _header(image, "Identity reset", icon=icons.WARNING, icon_left=True)
    font = body_font()
    lines = wrap("Confirm on the web page to erase this node's identity.", 21)
    for row, line in enumerate(lines):
        font.draw(image, TEXT_X - 1, 13 + row * ROW_HEIGHT, line)
    _centred(image, small_font(), 44, _host(view.web_url))
    _centred(image, small_font(), 55, "Hold B for 1 s to cancel")


def _error(image: Image.Image, view: ErrorView) -> None:
    _header(image, "Error", icon=icons.WARNING, icon_left=True)
    font = body_font()
    lines = wrap(clean(view.text, font), 21) or ("Unknown error",)
    if len(lines) > 4:
        lines = (*lines[:3], fit(f"{lines[3]} {lines[4]}", 21))
    for row, line in enumerate(lines):
        font.draw(image, TEXT_X - 1, 13 + row * ROW_HEIGHT, line)
    _centred(image, small_font(), 55, "Press a button to dismiss")


def _saver(image: Image.Image, view: SaverView) -> None:
    if view.unread:
        label = str(min(view.unread, 99))
        width = icons.size(icons.ENVELOPE)[0] + 2 + small_font().width(label)
        x, y = _saver_position(view.slot, width, 8)
        icons.draw(image, x, y, icons.ENVELOPE)
        small_font().draw(image, x + icons.size(icons.ENVELOPE)[0] + 2, y, label)
    else:
        width, height = icons.size(icons.DOT)
        x, y = _saver_position(view.slot, width, height)
        icons.draw(image, x, y, icons.DOT)


def _saver_position(slot: int, width: int, height: int) -> tuple[int, int]:
    # Steps coprime with the free span visit every column and row before repeating.
    return (slot * 37) % (WIDTH - width + 1), (slot * 23) % (HEIGHT - height + 1)


def _header(
    image: Image.Image,
    title: str,
    right: str = "",
    icon: icons.Icon | None = None,
    *,
    icon_left: bool = False,
) -> None:
    ImageDraw.Draw(image).rectangle((0, 0, WIDTH - 1, HEADER_HEIGHT - 1), fill=1)
    font = body_font()
    right_edge = WIDTH - TEXT_X
    if right:
        right_x = right_edge - font.width(right)
        font.draw(image, right_x, 1, right, 0)
        right_edge = right_x - 2
    title_x = TEXT_X
    if icon is not None:
        icon_width, icon_height = icons.size(icon)
        icon_x = title_x if icon_left else right_edge - icon_width
        icons.draw(image, icon_x, (HEADER_HEIGHT - icon_height) // 2, icon, 0)
        if icon_left:
            title_x += icon_width + 3
        else:
            right_edge = icon_x - 3
    _text(image, font, title_x, 1, title, right_edge - title_x, 0)


def _text(
    image: Image.Image, font: BitmapFont, x: int, y: int, text: str, width: int, ink: int = 1
) -> None:
    font.draw(image, x, y, fit(clean(text, font), font.columns(width)), ink)


def _centred(
    image: Image.Image,
    font: BitmapFont,
    y: int,
    text: str,
    x: int = 0,
    width: int = WIDTH,
) -> None:
    line = fit(clean(text, font), font.columns(width))
    font.draw(image, x + (width - font.width(line)) // 2, y, line)


def _scrollbar(image: Image.Image, first: int, visible: int, total: int) -> None:
    if total <= visible:
        return
    track = HEIGHT - BODY_TOP
    thumb = max(4, track * visible // total)
    top = BODY_TOP + (track - thumb) * first // (total - visible)
    draw = ImageDraw.Draw(image)
    for y in range(BODY_TOP, HEIGHT, 2):
        draw.point((SCROLLBAR_X + 1, y), fill=1)
    draw.rectangle((SCROLLBAR_X, top, WIDTH - 1, top + thumb - 1), fill=1)


def _human_bytes(count: int) -> str:
    if count < 1000:
        return f"{count} B"
    if count < 1_000_000:
        return f"{count // 1000} KB"
    return f"{count / 1_000_000:.1f} MB"


def _host(url: str) -> str:
    return urlsplit(url).netloc or url
