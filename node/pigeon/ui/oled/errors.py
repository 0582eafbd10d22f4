"""Typed errors of the OLED room: a view state that cannot be shown is the caller's fault."""


class OledError(Exception):
    """Root of every error raised by `pigeon.ui.oled`."""


class InvalidView(OledError, ValueError):
    """A view state field is out of range (code not six digits, URL too long for the QR, ...)."""


class InvalidEvent(OledError, ValueError):
    """A button edge names an unknown button or is older than the previous one."""
