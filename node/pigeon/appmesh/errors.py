"""Typed errors of the appmesh room: one root; every one means a peer sent bad bytes.

Messages name the faulty field and never carry payload bytes or identity keys.
"""


class AppMeshError(Exception):
    """Root of every error raised by `pigeon.appmesh`."""


class MalformedFragment(AppMeshError, ValueError):
    """A BLE frame is not a valid app fragment (short, wrong version, index not below count)."""


class MessageTooLarge(AppMeshError, ValueError):
    """A reassembling message grew past the size cap."""


class MalformedPacket(AppMeshError, ValueError):
    """A reassembled message is not a valid app mesh packet (short or wrong version)."""


class MalformedEnvelope(AppMeshError, ValueError):
    """A packet's payload is not a valid app envelope (short, wrong version, unknown type)."""
