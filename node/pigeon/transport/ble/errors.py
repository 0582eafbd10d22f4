"""Typed errors of the BLE transport: what BlueZ refused, and what a neighbour sent wrong.

All inherit `BleError`, itself a `TransportError`. The D-Bus faults are translated here from
dbus-fast's `DBusError` (the cause is kept as `__cause__`); `MalformedLinkFrame` is the peer's
fault and never carries frame bytes in its message.
"""

from __future__ import annotations

from pigeon.transport.base import TransportError


class BleError(TransportError):
    """Root of every error raised by `pigeon.transport.ble`."""


class BlueZUnavailable(BleError):
    """No system bus, or bluetoothd is not running (org.bluez has no owner)."""


class AdapterNotFound(BleError):
    """The configured adapter (for example hci0) does not exist."""


class AdapterBlocked(BleError):
    """The adapter is soft- or hard-blocked by rfkill and cannot be powered on."""


class PermissionDenied(BleError, PermissionError):
    """The D-Bus policy does not let this user talk to BlueZ (AccessDenied)."""


class BlueZCallFailed(BleError):
    """BlueZ answered a call with an error not covered by a more specific class."""


class AlreadyRegistered(BlueZCallFailed):
    """BlueZ already holds this application or advertisement of ours (it keeps them across an
    adapter power cycle)."""


class MalformedLinkFrame(BleError, ValueError):
    """A neighbour wrote or notified bytes that are not a valid link frame."""
