"""The L2CAP channel's address bytes against the kernel's struct layout, and `Channel` on a real
SEQPACKET socket pair (AF_UNIX: the same one-SDU-per-send, in-order, blocking-when-full socket
semantics as an LE credit-based channel; this machine has no Bluetooth sockets)."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.transport.ble import l2cap
from pigeon.transport.ble.l2cap import (
    BDADDR_LE_PUBLIC,
    BDADDR_LE_RANDOM,
    Channel,
    ChannelClosed,
    ChannelUnavailable,
    sockaddr_l2,
)


class KernelSockaddrL2(ctypes.Structure):
    """`struct sockaddr_l2` as <bluetooth/l2cap.h> declares it (natural alignment)."""

    _fields_ = [
        ("l2_family", ctypes.c_ushort),
        ("l2_psm", ctypes.c_ushort),
        ("l2_bdaddr", ctypes.c_ubyte * 6),
        ("l2_cid", ctypes.c_ushort),
        ("l2_bdaddr_type", ctypes.c_ubyte),
    ]


@given(
    st.binary(min_size=6, max_size=6),
    st.integers(0, 0xFFFF),
    st.sampled_from([BDADDR_LE_PUBLIC, BDADDR_LE_RANDOM]),
)
def test_sockaddr_matches_the_kernel_struct(raw: bytes, psm: int, kind: int) -> None:
    address = ":".join(f"{b:02X}" for b in raw)
    packed = sockaddr_l2(address, psm, kind)
    kernel = KernelSockaddrL2.from_buffer_copy(packed)
    assert len(packed) == ctypes.sizeof(KernelSockaddrL2) == 14
    assert kernel.l2_family == 31  # AF_BLUETOOTH
    assert kernel.l2_psm == psm
    assert bytes(kernel.l2_bdaddr) == raw[::-1]  # bdaddr_t holds the address little-endian
    assert (kernel.l2_cid, kernel.l2_bdaddr_type) == (0, kind)


def test_a_known_address() -> None:
    assert sockaddr_l2("11:22:33:44:55:66", 0xA7, BDADDR_LE_PUBLIC).hex() == (
        "1f00" + "a700" + "665544332211" + "0000" + "01" + "00"
    )


@pytest.mark.parametrize(
    ("address", "psm", "kind"),
    [
        ("11:22:33:44:55", 0x80, BDADDR_LE_PUBLIC),
        ("11:22:33:44:55:6", 0x80, BDADDR_LE_PUBLIC),
        ("11:22:33:44:55:GG", 0x80, BDADDR_LE_PUBLIC),
        ("11:22:33:44:55:66", 0x10000, BDADDR_LE_PUBLIC),
        ("11:22:33:44:55:66", 0x80, 0),  # BR/EDR: not an LE channel
    ],
)
def test_bad_addresses_are_value_errors(address: str, psm: int, kind: int) -> None:
    with pytest.raises(ValueError):
        sockaddr_l2(address, psm, kind)


async def test_no_bluetooth_sockets_is_channel_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object) -> socket.socket:
        raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")

    monkeypatch.setattr(l2cap.socket, "socket", refused)
    with pytest.raises(ChannelUnavailable, match="no Bluetooth sockets"):
        await l2cap.connect("00:11:22:33:44:55", "00:AA:01:01:00:01", BDADDR_LE_PUBLIC)
    with pytest.raises(ChannelUnavailable):
        l2cap.listen("00:11:22:33:44:55")


class Ends:
    """A Channel on one end of a socket pair, and what it heard."""

    def __init__(self) -> None:
        ours, self.peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.peer.setblocking(False)
        self.values: list[bytes] = []
        self.closed: list[str] = []
        self.arrived = asyncio.Event()
        self.channel = Channel(ours, "00:AA:01:01:00:01", self._value, self.closed.append)

    def _value(self, value: bytes) -> None:
        self.values.append(value)
        self.arrived.set()


async def test_sdus_cross_whole_and_in_order_both_ways() -> None:
    ends = Ends()
    loop = asyncio.get_running_loop()
    sent = [bytes([n % 256]) * (1 + n % 248) for n in range(300)]
    for value in sent:
        await loop.sock_sendall(ends.peer, value)
    while len(ends.values) < len(sent):
        ends.arrived.clear()
        await asyncio.wait_for(ends.arrived.wait(), 5)
    assert ends.values == sent
    for value in sent[:5]:
        await ends.channel.send(value)
    assert [await loop.sock_recv(ends.peer, 600) for _ in range(5)] == sent[:5]
    ends.channel.close()
    ends.peer.close()


async def test_send_waits_for_room_and_loses_nothing() -> None:
    ends = Ends()
    loop = asyncio.get_running_loop()
    frames = [n.to_bytes(4, "big") + bytes(240) for n in range(2000)]

    async def sender() -> None:
        for frame in frames:
            await ends.channel.send(frame)

    task = asyncio.create_task(sender())
    await asyncio.sleep(0.2)
    assert not task.done(), "2000 frames fitted without a reader: no backpressure to test"
    got = []
    while len(got) < len(frames):
        got.append(await asyncio.wait_for(loop.sock_recv(ends.peer, 600), 5))
    await task
    assert got == frames
    ends.channel.close()
    ends.peer.close()


async def test_the_peer_closing_is_reported_once() -> None:
    ends = Ends()
    ends.peer.close()
    for _ in range(50):
        if ends.closed:
            break
        await asyncio.sleep(0.01)
    assert ends.closed == ["the peer closed the channel"]
    assert ends.channel.closed
    with pytest.raises(ChannelClosed):
        await ends.channel.send(b"x")
    ends.channel.close()
    assert ends.closed == ["the peer closed the channel"]


async def test_close_ends_a_waiting_send_without_reporting() -> None:
    ends = Ends()

    async def fill() -> None:
        while True:
            await ends.channel.send(bytes(240))

    task = asyncio.create_task(fill())
    await asyncio.sleep(0.1)
    assert not task.done()
    ends.channel.close()
    with pytest.raises(ChannelClosed):
        await asyncio.wait_for(task, 2)
    assert ends.closed == []
    ends.peer.close()


@pytest.mark.parametrize(
    ("mask", "name"),
    [
        (0x0200 | 0x0400, "tx 1M, rx 1M"),
        (0x0800 | 0x1000, "tx 2M, rx 2M"),
        (0x0800 | 0x0400, "tx 2M, rx 1M"),
        (0x2000 | 0x4000 | 0x0001, "tx coded, rx coded"),  # BR/EDR bits are not LE's
        (0, ""),
    ],
)
def test_phy_names(mask: int, name: str) -> None:
    assert l2cap.phy_name(mask) == name


async def test_a_socket_that_is_not_l2cap_says_no_mtu_and_no_phy() -> None:
    ends = Ends()
    assert (ends.channel.send_mtu(), ends.channel.phy()) == (None, None)
    ends.channel.close()
    ends.peer.close()


async def test_the_channel_bounds_its_send_buffer() -> None:
    ends = Ends()  # an accepted socket, as a listener hands it over: the system's default buffer
    assert ends.channel._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * (
        l2cap.SEND_BUFFER_BYTES
    )  # Linux doubles what it is given
    ends.channel.close()
    ends.peer.close()
