"""The demo's terminal: commands typed while `pigeon demo` runs, and Robin's side of things.

Before a browser is paired, the page's virtual buttons are out of reach; `pair` does what
holding button "a" does (a new code, printed here), and the console says when a code it
printed expired unused. `robin` shows Robin's node's screen: the safety number it shows for you
and his conversation with you (the demo's scripted peer stands in for a second person, so his
side is printed here, where the person running the demo can see it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from typing import Final

from pigeon.daemon.demo_banner import COMMANDS_HELP, ROBIN, pairing_code_line, robin_side
from pigeon.daemon.node import Node
from pigeon.messenger.api import MessageView, MessengerError

CODE_WATCH_S: Final = 1.0
ROBIN_LINES: Final = 10
_READ_BYTES: Final = 4096


def _say(text: str) -> None:
    print(text, flush=True)


class DemoConsole:
    """Commands from stdin; notes about pairing codes and Robin's messages to stdout."""

    def __init__(self, you: Node, robin: Node, say: Callable[[str], None] = _say) -> None:
        self._you = you
        self._robin = robin
        self._say = say
        self._watched: tuple[str, int] | None = None  # (code, paired browsers when printed)
        self._buffer = b""

    # -- what the console shows -----------------------------------------------------------------

    def open_pairing(self) -> str:
        """Open a pairing window, as holding button "a" does; its code is watched for expiry."""
        code = self._you.pairing.start(time.time())
        self._watched = (code, len(self._you.pairing.sessions()))
        return code

    def robin_safety_number(self) -> str | None:
        """The safety number Robin's node shows for you; None until it knows your card."""
        try:
            return self._robin.messenger.safety_number(self._you.messenger.own_handle())
        except MessengerError:
            return None

    def robin_screen(self) -> str:
        """Robin's node's screen: his safety number for you and his latest messages with you."""
        lines: list[tuple[str, str]] = []
        try:
            you_at_robin = self._you.messenger.own_handle()
            for message in self._robin.messenger.conversation(you_at_robin, limit=ROBIN_LINES):
                who = "you" if message.direction == "in" else ROBIN
                lines.append((who, _content(message)))
        except MessengerError:
            pass  # locked, or Robin does not know you yet: nothing to show
        return robin_side(self.robin_safety_number(), lines)

    def robin_answered(self, received: MessageView, reply: str) -> None:
        """The scripted peer answered `received` with `reply`: show Robin's side live."""
        self._say(f" {ROBIN}'s node received from you: {_content(received)}")
        self._say(f" {ROBIN} answered: {reply}")

    def handle(self, line: str) -> None:
        """Carry out one typed command."""
        command = line.strip().lower()
        if command == "pair":
            self._say(pairing_code_line(self.open_pairing(), self._you.web_url))
        elif command == "robin":
            self._say(self.robin_screen())
        elif command in {"help", "?"}:
            self._say(COMMANDS_HELP)
        elif command:
            self._say(f" Unknown command {command[:20]!r}.\n{COMMANDS_HELP}")

    # -- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Read commands until stdin ends, and note what becomes of printed codes, until
        cancelled."""
        loop = asyncio.get_running_loop()
        reading = self._start_reading(loop)
        try:
            while True:
                self._check_code()
                await asyncio.sleep(CODE_WATCH_S)
        finally:
            if reading:
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_reader(sys.stdin.fileno())

    def _start_reading(self, loop: asyncio.AbstractEventLoop) -> bool:
        # add_reader rather than a pipe transport: it leaves the terminal in blocking mode.
        try:
            fd = sys.stdin.fileno()
            loop.add_reader(fd, self._readable, loop, fd)
        except (OSError, ValueError, AttributeError):  # closed, a regular file, or replaced
            return False
        return True

    def _readable(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        try:
            chunk = os.read(fd, _READ_BYTES)
        except OSError:
            chunk = b""
        if not chunk:  # stdin ended: no more commands
            loop.remove_reader(fd)
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self.handle(line.decode("utf-8", errors="replace"))

    def _check_code(self) -> None:
        if self._watched is None or self._you.pairing.window(time.time()) is not None:
            return
        _, paired_before = self._watched
        self._watched = None
        if len(self._you.pairing.sessions()) > paired_before:
            self._say(" A browser is paired.")
        else:
            self._say(" The pairing code expired unused: type `pair` for a new one.")


def _content(message: MessageView) -> str:
    if message.file_name is not None:
        return f"(file {message.file_name!r})"
    return message.text or ""
