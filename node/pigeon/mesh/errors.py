"""Typed errors of the mesh room: one root, the peer's faults apart from corrupt local state.

`MalformedPacket` and `MalformedFrame` mean a neighbour sent bytes that do not parse (the router
drops them, counts them and may throttle the neighbour); their messages name the faulty field and
never carry payload bytes. `CorruptState` means our own persisted state does not parse.
Quotas are not errors: the spool and the rate limiter answer with decisions and booleans.
"""


class MeshError(Exception):
    """Root of every error raised by `pigeon.mesh`."""


class MalformedPacket(MeshError, ValueError):
    """Bytes from a neighbour are not a valid mesh packet; the message names the field."""


class MalformedFrame(MeshError, ValueError):
    """A frame from a neighbour is malformed or contradicts its fragment set."""


class CorruptState(MeshError, ValueError):
    """Persisted mesh state (e.g. a seen-cache snapshot) does not parse."""
