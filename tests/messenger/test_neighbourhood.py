"""The neighbourhood's public bitchat lines against a real SQLCipher vault: kept while unlocked,
live only while locked, the owner's own lines marked, posts checked before they go out."""

from pathlib import Path

import pytest

from pigeon.messenger.events import NeighbourhoodHeard
from pigeon.messenger.neighbourhood import Neighbourhood, NeighbourhoodError, PublicChatLine
from tests.messenger.helpers import Endpoint

NOW = 1_800_000_000.0
OWN = b"\x07" * 8


def _line(body: str, sender: bytes = b"\x01" * 8) -> PublicChatLine:
    return PublicChatLine(sender, "juno", body, 5, NOW)


def test_lines_are_kept_while_unlocked_and_only_shown_while_locked(tmp_path: Path) -> None:
    owner = Endpoint(tmp_path, 1)
    owner.start(NOW)
    chat = Neighbourhood(owner.keeper)
    live = chat.subscribe()
    chat.heard(_line("kept"))
    owner.keeper.lock()
    chat.heard(_line("live only"))
    assert chat.lines() == []
    owner.start(NOW)
    assert [line.body for line in chat.lines()] == ["kept"]
    events = live.drain()
    assert [e.line.body for e in events if isinstance(e, NeighbourhoodHeard)] == [
        "kept",
        "live only",
    ]


def test_posts_are_checked_and_own_lines_marked(tmp_path: Path) -> None:
    owner = Endpoint(tmp_path, 2)
    owner.start(NOW)
    chat = Neighbourhood(owner.keeper)
    with pytest.raises(NeighbourhoodError, match="off"):
        chat.post("me", "hello")
    sent: list[tuple[str, str]] = []

    def poster(nickname: str, text: str) -> PublicChatLine:
        sent.append((nickname, text))
        line = PublicChatLine(OWN, nickname, text, 6, NOW)
        chat.heard(line)  # the driver hears its own post first, as the node wires it
        return line

    chat.set_poster(poster, OWN)
    for nickname, text in (("", "x"), ("me", " "), ("x" * 25, "x"), ("me", "ü" * 201)):
        with pytest.raises(NeighbourhoodError):
            chat.post(nickname, text)
    chat.post("  me ", " hello ")
    assert sent == [("me", "hello")]
    (line,) = chat.lines()
    assert line.mine
    assert line.seq > 0
