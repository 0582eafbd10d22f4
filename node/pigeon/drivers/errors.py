"""Typed errors of the drivers room: absent or failing hardware, and frames of the wrong shape."""


class DriverError(Exception):
    """Root of every error raised by `pigeon.drivers`."""


class DeviceNotFound(DriverError):
    """The panel, bus or GPIO library is absent, inaccessible, or does not answer."""


class DeviceIoError(DriverError):
    """The device was there but a transfer to it failed."""


class DeviceClosed(DriverError):
    """The driver was closed by us."""


class InvalidFrame(DriverError, ValueError):
    """An image that is not 128x64 in mode "1"."""


class UnknownButton(DriverError, ValueError):
    """A button id that this driver was not configured with."""
