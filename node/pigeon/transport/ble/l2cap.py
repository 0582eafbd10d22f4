"""Node-to-node links on an LE credit-based L2CAP channel (docs/protocol.md, "Link channels").

A node listens on `LINK_PSM`; a node that dialed another over GATT opens a channel to it on the
same LE connection and runs the link there: the same link frames (`gatt`), one per SDU. The
kernel's credits give what GATT does not: the receiver grants the sender room (backpressure, no
loss when the receiving process is slow), SDUs arrive in order, and a channel carries one
link's frames only.

Python 3.11's socket module takes a Bluetooth L2CAP address as (bdaddr, psm) and cannot name an
LE address type, so `bind` and `connect` get a `struct sockaddr_l2` built here and go through
libc; everything else (accept, send, receive) is the socket module's, driven by asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import os
import socket
import struct
import termios
from collections.abc import Callable
from typing import Final

LINK_PSM: Final = 0x00A7  # in the LE dynamic range 0x0080-0x00FF
CONNECT_TIMEOUT_S: Final = 5.0
LISTEN_BACKLOG: Final = 8
# The largest SDU a channel takes in. A link frame is at most 4 + 1020 bytes (gatt.py), but Linux
# grants the sender credits for one receive MTU (imtu / MPS + 1 PDUs): this sets the window, so
# that the sender keeps the connection busy between two connection events.
RECEIVE_MTU: Final = 8192
# What the kernel queues for one channel beyond what the peer granted credits for. It bounds a
# link's memory, and how long a text waits behind a bulk transfer on the same link: 16 KiB is
# 16 frames of 1 KiB, some 0.2 s at 80 kB/s. (Linux doubles the value it is given.)
SEND_BUFFER_BYTES: Final = 8 * 1024

AF_BLUETOOTH: Final = 31
BTPROTO_L2CAP: Final = 0
SOL_BLUETOOTH: Final = 274
BT_SNDMTU: Final = 12
BT_RCVMTU: Final = 13
BT_PHY: Final = 14  # the LE connection's PHYs, a bit mask (<bluetooth/bluetooth.h>)
_LE_PHYS: Final = (
    (0x0200, "1M", "tx"),
    (0x0400, "1M", "rx"),
    (0x0800, "2M", "tx"),
    (0x1000, "2M", "rx"),
    (0x2000, "coded", "tx"),
    (0x4000, "coded", "rx"),
)
BDADDR_LE_PUBLIC: Final = 1
BDADDR_LE_RANDOM: Final = 2
# struct sockaddr_l2 { sa_family_t family; __le16 psm; bdaddr_t bdaddr; __le16 cid; u8 type; }
_SOCKADDR_L2: Final = struct.Struct("<HH6sHBx")


class ChannelUnavailable(OSError):
    """No L2CAP channel here: the kernel has no Bluetooth, the peer does not listen, or it
    refused; the link runs over GATT instead."""


def sockaddr_l2(address: str, psm: int, address_type: int) -> bytes:
    """The bytes of a `struct sockaddr_l2` for `address` ("AA:BB:..."), `psm`, `address_type`.

    Raises ValueError for a malformed address, a PSM out of 0..0xFFFF or an unknown type.
    """
    parts = address.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"not a Bluetooth address: {address!r}")
    if not 0 <= psm <= 0xFFFF:
        raise ValueError(f"PSM {psm} out of range")
    if address_type not in (BDADDR_LE_PUBLIC, BDADDR_LE_RANDOM):
        raise ValueError(f"not an LE address type: {address_type}")
    bdaddr = bytes(int(p, 16) for p in reversed(parts))  # bdaddr_t is little-endian
    return _SOCKADDR_L2.pack(AF_BLUETOOTH, psm, bdaddr, 0, address_type)


def phy_name(mask: int) -> str:
    """The LE PHYs in a BT_PHY mask, as "tx 2M, rx 2M" ("" when it names none)."""
    return ", ".join(
        f"{way} {phy}"
        for way in ("tx", "rx")
        for bit, phy, d in _LE_PHYS
        if d == way and mask & bit
    )


def address_type_code(name: str) -> int:
    """BlueZ's Device1.AddressType ("public", "random") as the kernel's bdaddr type."""
    return BDADDR_LE_RANDOM if name == "random" else BDADDR_LE_PUBLIC


_LIBC = ctypes.CDLL(None, use_errno=True)


def _sys(call: str, sock: socket.socket, address: bytes) -> int:
    buffer = ctypes.create_string_buffer(address, len(address))
    if getattr(_LIBC, call)(sock.fileno(), buffer, len(address)) == 0:
        return 0
    return ctypes.get_errno()


def _new_socket() -> socket.socket:
    try:
        sock = socket.socket(AF_BLUETOOTH, socket.SOCK_SEQPACKET, BTPROTO_L2CAP)
    except OSError as exc:
        raise ChannelUnavailable(exc.errno, f"no Bluetooth sockets here: {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


def _bind(sock: socket.socket, own_address: str, psm: int) -> None:
    code = _sys("bind", sock, sockaddr_l2(own_address, psm, BDADDR_LE_PUBLIC))
    if code:
        sock.close()
        raise ChannelUnavailable(code, f"L2CAP bind to PSM {psm:#x}: {os.strerror(code)}")
    # Only once bound to an LE address does Linux take an LE receive MTU (an unbound socket is
    # BR/EDR: EINVAL). Accepted sockets inherit the listener's. A kernel that refuses it keeps
    # its default, and `send_mtu` tells the peer's side what fits.
    with contextlib.suppress(OSError):
        sock.setsockopt(SOL_BLUETOOTH, BT_RCVMTU, RECEIVE_MTU)


def listen(own_address: str, psm: int = LINK_PSM) -> socket.socket:
    """A non-blocking socket listening for LE channels on `psm` of the adapter at
    `own_address`; raises ChannelUnavailable."""
    sock = _new_socket()
    _bind(sock, own_address, psm)
    try:
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ChannelUnavailable(exc.errno, f"L2CAP listen: {exc.strerror}") from exc
    return sock


async def connect(
    own_address: str, address: str, address_type: int, psm: int = LINK_PSM
) -> socket.socket:
    """A channel from the adapter at `own_address` to `psm` of the device at `address`, on the
    LE connection to it; raises ChannelUnavailable (refused, unreachable, timed out)."""
    sock = _new_socket()
    try:
        _bind(sock, own_address, 0)
        code = _sys("connect", sock, sockaddr_l2(address, psm, address_type))
        if code not in (0, errno.EINPROGRESS):
            raise ChannelUnavailable(code, f"L2CAP connect: {os.strerror(code)}")
        if code == errno.EINPROGRESS:
            await _until_writable(sock, CONNECT_TIMEOUT_S)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise ChannelUnavailable(code, f"L2CAP connect: {os.strerror(code)}")
    except BaseException:
        sock.close()
        raise
    return sock


async def _until_writable(sock: socket.socket, within_s: float) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def writable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(sock, writable)
    try:
        async with asyncio.timeout(within_s):
            await ready
    except TimeoutError:
        raise ChannelUnavailable(errno.ETIMEDOUT, "L2CAP connect timed out") from None
    finally:
        loop.remove_writer(sock)


class ChannelClosed(EOFError):
    """The channel ended: the peer closed it, the connection under it went, or we closed it."""


class Channel:
    """One connected SEQPACKET socket carrying link frames, an SDU each, in order.

    Every SDU that arrives goes to `on_value` as soon as the socket has it; `on_closed` hears
    once why the channel ended (not when `close` ends it). `send` waits while the kernel's queue
    toward the peer is full: that wait is the link's backpressure.
    """

    def __init__(
        self,
        sock: socket.socket,
        address: str,
        on_value: Callable[[bytes], None],
        on_closed: Callable[[str], None],
    ) -> None:
        sock.setblocking(False)
        # Here, not on the listener: an accepted socket starts from the system's default (about
        # 208 KiB), not its listener's. It only bounds what the channel holds; a kernel that
        # refuses keeps its default.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        self._sock = sock
        self.address = address
        self._on_value = on_value
        self._on_closed = on_closed
        self._loop = asyncio.get_running_loop()
        self._writable = asyncio.Event()
        self.closed = False
        self._loop.add_reader(sock.fileno(), self._readable)

    def send_mtu(self) -> int | None:
        """The largest SDU the peer takes (its receive MTU), or None where the socket cannot
        say (not an L2CAP socket)."""
        try:
            (mtu,) = struct.unpack("<H", self._sock.getsockopt(SOL_BLUETOOTH, BT_SNDMTU, 2))
        except (OSError, struct.error):
            return None
        return int(mtu)

    def phy(self) -> str | None:
        """The PHYs the LE connection under the channel uses now ("tx 2M, rx 2M"), or None
        where the socket cannot say."""
        try:
            (mask,) = struct.unpack("<I", self._sock.getsockopt(SOL_BLUETOOTH, BT_PHY, 4))
        except (OSError, struct.error):
            return None
        return phy_name(mask) or None  # a kernel that was told no PHY (emulated controllers)

    def kernel_bytes(self) -> int | None:
        """The memory the kernel holds for what this channel has not sent yet (its send
        buffer's use, skb overhead included), or None where the socket cannot say."""
        try:
            size = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            free = struct.unpack("i", fcntl.ioctl(self._sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))
        except OSError:
            return None
        # Bluetooth sockets answer TIOCOUTQ with the send buffer's free room (bt_sock_ioctl).
        return max(0, int(size) - int(free[0]))

    def _readable(self) -> None:
        while not self.closed:
            try:
                value = self._sock.recv(RECEIVE_MTU + 1)
            except BlockingIOError:
                return
            except OSError as exc:
                self._end(f"channel ended: {exc.strerror or exc}")
                return
            if not value:
                self._end("the peer closed the channel")
                return
            self._on_value(value)

    async def send(self, value: bytes) -> None:
        """Send one SDU, waiting while the kernel's queue is full; raises ChannelClosed."""
        while True:
            if self.closed:
                raise ChannelClosed("channel closed")
            try:
                self._sock.send(value)
                return
            except BlockingIOError:
                self._writable.clear()
                self._loop.add_writer(self._sock.fileno(), self._writable.set)
                try:
                    await self._writable.wait()
                finally:
                    if not self.closed:
                        self._loop.remove_writer(self._sock.fileno())
            except OSError as exc:
                self._end(f"channel ended: {exc.strerror or exc}")
                raise ChannelClosed(f"channel ended: {exc.strerror or exc}") from exc

    def _end(self, reason: str) -> None:
        if not self.closed:
            self.close()
            self._on_closed(reason)

    def close(self) -> None:
        """Close the socket (idempotent); a waiting `send` raises ChannelClosed."""
        if self.closed:
            return
        self.closed = True
        self._loop.remove_reader(self._sock.fileno())
        self._loop.remove_writer(self._sock.fileno())
        self._writable.set()
        self._sock.close()
