"""Server-rendered pages: Jinja2 templates with autoescaping, and the filters they use."""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from typing import Any, Final

import jinja2
from aiohttp import web

from pigeon.ui.web.keys import CONFIG, RESET, SESSION

STATE_LABELS: Final = {
    "queued": "queued",
    "sent": "sent",
    "relayed": "relayed",
    "delivered": "delivered",
    "failed": "failed",
    "received": "",
}
LINK_PILL: Final = {"up": "ok", "connecting": "warn", "down": "bad"}
RELAY_PILL: Final = {
    "connected": "ok",
    "connecting": "warn",
    "disconnected": "plain",
    "failed": "bad",
}
RADIO_NAMES: Final = {"ble": "Bluetooth LE", "sim": "Simulated radio"}
# Redirects after a form name one of these (never free text: a link cannot put words on the page).
FLASHES: Final = {
    "added": "Contact added. Compare safety numbers to verify them.",
    "renamed": "Contact renamed.",
    "removed": "Contact removed.",
    "verified": "Marked as verified.",
    "interval": "Check-in interval saved.",
    "passphrase": "Passphrase changed.",
    "passphrase-set": "Passphrase set. After each restart the vault stays locked until you"
    " unlock it with this passphrase; you can lock it now from this page.",
    "ephemeral": "Ephemeral mode changed.",
    "mailbox-hints": "Asking neighbours to deposit: changed.",
    "revoked": "Browser revoked.",
    "paired": "This browser is paired.",
    "unlocked": "Vault unlocked.",
    "reset": "The node has a new identity and no paired browser. Pair this browser again.",
    "kept": "The reset was cancelled; the identity stays.",
}


def filesize(size: int | None) -> str:
    """Bytes as a short human size (binary units)."""
    value = float(size or 0)
    for unit in ("B", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float) -> str:
    """An uptime such as "3 d 4 h", "2 h 5 min" or "40 s"."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{secs} s"


def clock_text(at: float, twelve_hour: bool) -> str:
    """Hours and minutes in the node's local time, as "18:54" or "6:54pm" (the OLED's way)."""
    moment = time.localtime(at)  # a third of datetime's cost, and it runs once a message
    if twelve_hour:
        suffix = "am" if moment.tm_hour < 12 else "pm"
        return f"{(moment.tm_hour - 1) % 12 + 1}:{moment.tm_min:02d}{suffix}"
    return f"{moment.tm_hour:02d}:{moment.tm_min:02d}"


@jinja2.pass_context
def clock(context: Mapping[str, Any], at: float) -> str:
    """Hours and minutes on the node's clock setting (the page's script rewrites it into the
    browser's time zone on the same setting; without the setting in the context, 24 hours)."""
    return clock_text(at, bool(context.get("twelve_hour", False)))


@jinja2.pass_context
def when(context: Mapping[str, Any], at: float) -> str:
    """A time relative to the page's `now`: "just now", "5 min ago", "14:02", or "3 Nov"."""
    now = float(context["now"])
    ago = now - at
    if 0 <= ago < 60:
        return "just now"
    if 0 <= ago < 3600:
        return f"{int(ago // 60)} min ago"
    moment, today = datetime.datetime.fromtimestamp(at), datetime.datetime.fromtimestamp(now)
    if moment.date() == today.date():
        return clock_text(at, bool(context["twelve_hour"]))
    return f"{moment.day} {moment:%b}"


@jinja2.pass_context
def stamp(context: Mapping[str, Any], at: float) -> str:
    """A date and time in the node's local time, such as "3 Nov 2026, 14:02"."""
    moment = datetime.datetime.fromtimestamp(at)
    return f"{moment.day} {moment:%b %Y}, {clock_text(at, bool(context['twelve_hour']))}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pigeon.ui.web", "templates"),
        auto_reload=False,  # package files: no stat of every template on every render
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filesize=filesize, duration=duration, clock=clock, when=when, stamp=stamp)
    env.globals.update(
        STATE_LABELS=STATE_LABELS,
        LINK_PILL=LINK_PILL,
        RELAY_PILL=RELAY_PILL,
        RADIO_NAMES=RADIO_NAMES,
    )
    return env


ENVIRONMENT: Final = _environment()


def render_fragment(request: web.Request, template: str, **context: Any) -> str:
    """Render `template` with the common context (`now`, `node_name`)."""
    config = request.app[CONFIG]
    full = {
        "now": config.clock(),
        "node_name": config.node_name,
        "twelve_hour": config.twelve_hour,
        **context,
    }
    return ENVIRONMENT.get_template(template).render(full)


def render_page(
    request: web.Request,
    template: str,
    *,
    title: str,
    page: str,
    section: str = "",
    http_status: int = 200,
    **context: Any,
) -> web.Response:
    """A full HTML page; `page` selects the script behaviour, `section` the highlighted tab."""
    defaults: dict[str, Any] = {
        "flash": FLASHES.get(request.query.get("flash", ""), ""),
        "flash_kind": "ok",
        "data": {},
        "unread": 0,
        "signed_in": SESSION in request,
        # Every page says so while a reset asked for on the buttons waits (not to strangers).
        "reset_pending": SESSION in request and request.app[RESET].pending(),
    }
    defaults.update(context)
    text = render_fragment(request, template, title=title, page=page, section=section, **defaults)
    return web.Response(text=text, status=http_status, content_type="text/html", charset="utf-8")
