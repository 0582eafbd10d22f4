"""Originating a directed bitchat packet on one link, as bitchat sends one: whole, or as
fragments (0x20) addressed to the same recipient when it is larger than the link takes."""

from __future__ import annotations

from collections.abc import Callable

from pigeon.bitchat import packet as wire
from pigeon.bitchat.events import Action, SendFrame
from pigeon.bitchat.fragment import split
from pigeon.bitchat.router import BitchatRouter


def originate_on_link(
    router: BitchatRouter,
    link: str,
    packet: bytes,
    now: float,
    random_bytes: Callable[[int], bytes],
) -> tuple[bool, list[Action]]:
    """The router's actions for `packet` on `link`; True when every frame was queued there
    (False: the link went down, or takes less than one fragment)."""
    limit = router.frame_limit(link)
    if limit is None:
        return False, []
    frames = [packet]
    if len(packet) > limit:
        view = wire.parse(packet)
        assert view.recipient is not None  # only directed packets are sent on one link
        try:
            frames = split(packet, view.recipient, limit, random_bytes(8))  # 8-byte fragment id
        except ValueError:
            return False, []
    actions: list[Action] = []
    went = True
    for frame in frames:
        sent = router.originate(frame, now, link)
        actions += sent
        went = went and any(type(a) is SendFrame and a.link == link for a in sent)
    return went, actions
