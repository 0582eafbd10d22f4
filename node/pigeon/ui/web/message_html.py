"""One message of the chat page as HTML, built in Python rather than by a Jinja macro.

A page built from scratch shows 100 messages, and the Jinja macro that rendered each spent most
of that page's time in the template runtime (a context per call, a lookup per attribute, a
Markup per piece: bench/bench_web.py, "chat_page_100_messages_cold"). Here the constant pieces
are built once and each message costs one f-string. Every value that comes from a message is
escaped with markupsafe (as autoescaping did); the values formatted here (the times, the size,
the progress: numbers, units and separators) and the direction and state names (fixed words)
have nothing to escape.
Text that may be written right to left stays in an element with dir="auto" (file names, texts;
see app.js), so its direction is its own. The times are on 24 hours: the page's script rewrites
each <time data-at> into the browser's time zone on the node's clock setting.
"""

from __future__ import annotations

from typing import Final

from markupsafe import Markup, escape

from pigeon.messenger.api import MessageView
from pigeon.ui.web.render import ENVIRONMENT, STATE_LABELS, clock_text, filesize

# The icon stays in icons.html, the one source of the page's icons; it is rendered once.
_FILE_ICON: Final = str(ENVIRONMENT.get_template("icons.html").module.icon("file"))  # type: ignore[attr-defined]
# An outgoing message's state, by state name (an incoming message shows none).
_STATE_SPANS: Final = {
    state: f'<span class="state {state}" data-role="state">{label}</span>'
    for state, label in STATE_LABELS.items()
}


def render_message(message: MessageView) -> Markup:
    """The message's HTML: its bubble (text or file), its time, and our message's state."""
    ident = escape(message.id)
    if message.kind == "file":
        bubble = f'<div class="bubble">{_file(message, ident)}</div>'
    else:
        bubble = f'<div class="bubble" dir="auto">{escape(message.text)}</div>'
    state = _STATE_SPANS[message.state] if message.direction == "out" else ""
    if message.state == "failed" and message.failure_reason:
        state += f'<span class="small">{escape(message.failure_reason)}</span>'
    at = message.created_at
    return Markup(
        f'<div class="msg {message.direction}" id="m-{ident}" data-id="{ident}">\n'
        f"  {bubble}\n"
        f'  <div class="meta"><time data-at="{at}">{clock_text(at, False)}</time>'
        f"{state}</div>\n</div>"
    )


def _file(message: MessageView, ident: Markup) -> str:
    """A file's icon, its name (a download link once it is whole), size and progress."""
    name = escape(message.file_name)
    progress = message.file_progress
    if progress is not None and progress >= 1.0:
        link = f'<a class="name" dir="auto" href="/api/messages/{ident}/file" download="{name}">'
        label = f"{link}{name}</a>"
    else:
        label = f'<span class="name" dir="auto">{name}</span>'
    bar = ""
    if progress is not None and progress < 1.0:
        bar = f'<progress max="1" value="{progress}"></progress>'
    size = filesize(message.file_size)
    return (
        f'<div class="file">{_FILE_ICON}<div class="grow">{label}'
        f'<div class="small">{size}</div>{bar}</div></div>'
    )
