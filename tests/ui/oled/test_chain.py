"""The whole OLED path as the daemon will wire it: virtual buttons -> decoder -> machine ->
screens -> PNG display, on a fake clock. Hold the button, get a pairing window, see its QR."""

from __future__ import annotations

import dataclasses
import io

import zxingcpp
from PIL import Image

from pigeon.drivers import ButtonEvent, PngDisplay, VirtualButtons
from pigeon.ui.oled import (
    Action,
    ButtonDecoder,
    MarkRead,
    Pairing,
    StartPairing,
    UiMachine,
    UiRequest,
    render,
)
from pigeon.ui.oled.qr import qr_text
from pigeon.ui.oled.views import MessageView, PairingView, ScreenView, StatusView
from tests.ui.oled.samples import CERT, URL
from tests.ui.oled.test_machine import STATE


class Node:
    """A miniature daemon loop around the OLED room, driven by a fake clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.buttons = VirtualButtons(clock=lambda: self.now)
        self.events: list[ButtonEvent] = []
        self.buttons.start(self.events.append)
        self.decoder = ButtonDecoder()
        self.machine = UiMachine(STATE, self.now)
        self.display = PngDisplay()
        self.requests: list[UiRequest] = []
        self.frames = 0
        self.last_view: ScreenView | None = None

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while (deadline := self.decoder.next_deadline_s()) is not None and deadline <= end:
            self.now = deadline
            self._handle(self.decoder.tick(self.now))
        self.now = end
        self._handle(self.decoder.tick(self.now))

    def press(self, button: str, hold_s: float) -> None:
        self.buttons.press(button)
        self._drain()
        self.advance(hold_s)
        self.buttons.release(button)
        self._drain()
        self.advance(0.5)

    def _drain(self) -> None:
        for event in self.events:
            self._handle(self.decoder.edge(event.button, event.pressed, event.t_s))
        self.events.clear()

    def _handle(self, actions: tuple[Action, ...]) -> None:
        for action in actions:
            self.requests.extend(self.machine.act(action, self.now))
        self.redraw()

    def redraw(self) -> None:
        view = self.machine.view(self.now)
        if view != self.last_view:
            self.display.show(render(view))
            self.last_view = view
            self.frames += 1


def shown(node: Node) -> ScreenView | None:
    return node.last_view


def test_hold_for_pairing_shows_a_scannable_code() -> None:
    node = Node()
    node.redraw()
    assert isinstance(shown(node), StatusView)
    node.press("a", hold_s=3.2)
    assert node.requests == [StartPairing()]
    pairing = Pairing("246810", URL, CERT, expires_at_s=node.now + 120)
    node.machine.update(dataclasses.replace(STATE, pairing=pairing), node.now)
    node.redraw()
    assert isinstance(shown(node), PairingView)
    with Image.open(io.BytesIO(node.display.frame_png())) as frame:
        big = frame.convert("L").resize((384, 192), Image.Resampling.NEAREST)
    assert [result.text for result in zxingcpp.read_barcodes(big)] == [qr_text(URL)]


def test_short_presses_open_the_first_message() -> None:
    node = Node()
    node.press("a", hold_s=0.1)
    node.press("b", hold_s=0.1)
    assert node.requests == [MarkRead("m0")]
    assert isinstance(shown(node), MessageView)
    frames = node.frames
    node.advance(5.0)
    assert node.frames == frames  # nothing changed, nothing redrawn
