"""The web page's device panel: the OLED mirror and the virtual buttons (`DevicePanel` port)."""

from __future__ import annotations

import io
from collections.abc import Callable

from pigeon.drivers import Buttons, Display, PngDisplay, VirtualButtons
from pigeon.ui.oled import ScreenView, render
from pigeon.ui.oled.machine import SCREENSAVER_AFTER_S
from pigeon.ui.oled.views import SaverView
from pigeon.ui.web.ports import PANEL_BUTTONS


class NodePanel:
    """Mirrors the OLED's current view; presses reach the virtual buttons when configured."""

    def __init__(
        self,
        display: Display | None,
        buttons: Buttons | None,
        current_view: Callable[[], ScreenView | None],
    ) -> None:
        self._display = display
        self._buttons = buttons if isinstance(buttons, VirtualButtons) else None
        self._current_view = current_view
        self._cache: tuple[ScreenView | None, bytes] | None = None

    def frame_png(self) -> bytes:
        """The frame on the panel (a real panel's frame is rendered again from the same view)."""
        if isinstance(self._display, PngDisplay):
            return self._display.frame_png()
        view = self._current_view()
        if self._cache is not None and self._cache[0] == view:
            return self._cache[1]
        buffer = io.BytesIO()
        if view is not None:
            render(view).save(buffer, format="PNG", optimize=True)
        else:
            from PIL import Image

            Image.new("1", (128, 64), 0).save(buffer, format="PNG")
        self._cache = (view, buffer.getvalue())
        return self._cache[1]

    def asleep(self) -> bool:
        """True while the OLED shows its screensaver (a button press wakes it)."""
        return isinstance(self._current_view(), SaverView)

    def sleep_after_s(self) -> float:
        """The OLED machine's screensaver delay."""
        return SCREENSAVER_AFTER_S

    def buttons_available(self) -> bool:
        """True when `buttons.kind = "virtual"`."""
        return self._buttons is not None

    def press(self, button: str) -> None:
        """Push a virtual button. Raises ValueError (unknown button, or no virtual buttons)."""
        self._buttons_for(button).press(button)

    def release(self, button: str) -> None:
        """Let a virtual button go. Raises ValueError (unknown button, or no virtual buttons)."""
        self._buttons_for(button).release(button)

    def _buttons_for(self, button: str) -> VirtualButtons:
        if button not in PANEL_BUTTONS:
            raise ValueError("unknown button")
        if self._buttons is None:
            raise ValueError('this node has no virtual buttons (buttons.kind is not "virtual")')
        return self._buttons
