"""The app router's own end: packets the node originates, and packets for the owner's key."""

from pigeon.appmesh.events import (
    Action,
    DeliverLocal,
    Drop,
    DropReason,
    FrameReceived,
    LinkUp,
    OfferUplink,
    Originate,
    ServeKeys,
)
from pigeon.appmesh.fragment import split
from pigeon.appmesh.router import AppRouter

from .helpers import ALICE, BOB, app_packet, packets_sent


def _receive(router: AppRouter, link: str, packet: bytes) -> list[Action]:
    actions: list[Action] = []
    for frame in split(packet, 1, 150):
        actions += router.handle(FrameReceived(link, frame), 0.0)
    return actions


def test_an_originated_packet_goes_to_every_link_unchanged_and_its_echo_is_a_duplicate() -> None:
    router = AppRouter()
    for link in ("a", "b"):
        router.handle(LinkUp(link, 185), 0.0)
    packet = app_packet(7, sender=ALICE, recipient=BOB)
    sent = packets_sent(router.handle(Originate(packet), 0.0))
    assert sent == {"a": [packet], "b": [packet]}
    echo = _receive(router, "a", packet)
    assert [a.reason for a in echo if isinstance(a, Drop)] == [DropReason.DUPLICATE]


def test_an_originated_packet_waits_in_custody_for_a_link() -> None:
    router = AppRouter()
    packet = app_packet(8, sender=ALICE, recipient=BOB)
    assert packets_sent(router.handle(Originate(packet), 0.0)) == {}
    assert packets_sent(router.handle(LinkUp("a", 185), 1.0)) == {"a": [packet]}


def test_packets_for_a_served_key_are_delivered_not_relayed_nor_offered() -> None:
    router = AppRouter()
    for link in ("a", "b"):
        router.handle(LinkUp(link, 185), 0.0)
    router.handle(ServeKeys(frozenset({BOB})), 0.0)
    packet = app_packet(9, sender=ALICE, recipient=BOB)
    actions = _receive(router, "a", packet)
    assert [a for a in actions if isinstance(a, DeliverLocal)] == [DeliverLocal(packet)]
    assert packets_sent(actions) == {}
    assert not [a for a in actions if isinstance(a, OfferUplink)]
    router.handle(ServeKeys(frozenset()), 0.0)
    other = app_packet(10, sender=ALICE, recipient=BOB)
    assert packets_sent(_receive(router, "a", other)) != {}
