"""OLED screens as pure functions of a view state, and button gestures decoded into actions.

Pure: PIL and segno only; no luma, GPIO, clock or thread (time is passed in, in seconds on the
daemon's monotonic clock). The daemon wires it like this:

    decoder = ButtonDecoder()
    machine = UiMachine(view_state, now)
    for action in decoder.edge(event.button, event.pressed, event.t_s):   # also decoder.tick(now)
        requests = machine.act(action, now)     # StartPairing, MarkRead(...), ... to carry out
    machine.update(new_view_state, now)          # whenever the node's state changes
    view = machine.view(now)
    if view != last_view:
        display.show(render(view))               # a 128x64 mode-"1" PIL image

and wakes up again at the earliest of `decoder.next_deadline_s()` and
`machine.next_change_s(now)`. Errors: `OledError`, `InvalidView` (a view state out of range),
`InvalidEvent` (an unknown button or time going backwards).
"""

from pigeon.ui.oled.buttons import BUTTON_A, BUTTON_B, Action, ButtonDecoder
from pigeon.ui.oled.errors import InvalidEvent, InvalidView, OledError
from pigeon.ui.oled.machine import (
    CancelPairing,
    CancelReset,
    MarkRead,
    Page,
    RequestReset,
    StartPairing,
    UiMachine,
    UiRequest,
)
from pigeon.ui.oled.screens import render
from pigeon.ui.oled.state import (
    AppMeshLine,
    CourierLine,
    GatewayLine,
    Message,
    Pairing,
    Uplink,
    ViewState,
)
from pigeon.ui.oled.views import ScreenView

__all__ = [
    "BUTTON_A",
    "BUTTON_B",
    "Action",
    "AppMeshLine",
    "ButtonDecoder",
    "CancelPairing",
    "CancelReset",
    "CourierLine",
    "GatewayLine",
    "InvalidEvent",
    "InvalidView",
    "MarkRead",
    "Message",
    "OledError",
    "Page",
    "Pairing",
    "RequestReset",
    "ScreenView",
    "StartPairing",
    "UiMachine",
    "UiRequest",
    "Uplink",
    "ViewState",
    "render",
]
