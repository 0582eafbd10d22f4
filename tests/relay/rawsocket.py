"""A WebSocket client on a bare TCP socket, for abuse tests: it can stop reading, keep a tiny
receive window, or never upgrade at all, which aiohttp's client does not let a test do."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from dataclasses import dataclass

from pigeon.relay.protocol import ClientFrame, ServerFrame, decode_server_frame, encode

TIMEOUT_S = 10.0


@dataclass
class RawSocket:
    """One TCP connection to the relay; WebSocket framing done by hand."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def open(cls, host: str, port: int, *, receive_buffer: int = 0) -> RawSocket:
        """Connect (with SO_RCVBUF set first if `receive_buffer`); no HTTP sent yet."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        return cls(reader, writer)

    async def upgrade(self, path: str = "/v1") -> None:
        """Send the WebSocket handshake and wait for 101."""
        key = base64.b64encode(os.urandom(16)).decode()
        host, port = self.writer.get_extra_info("peername")[:2]
        self.writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)
        assert head.startswith(b"HTTP/1.1 101"), head

    async def send_raw(self, data: bytes) -> None:
        """Bytes as they are (an HTTP fragment, say)."""
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, frame: ClientFrame) -> None:
        """One masked binary message."""
        payload = encode(frame)
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            head = struct.pack(">BB", 0x82, 0x80 | length)
        elif length < 1 << 16:
            head = struct.pack(">BBH", 0x82, 0x80 | 126, length)
        else:
            head = struct.pack(">BBQ", 0x82, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)
        await self.writer.drain()

    async def receive(self) -> ServerFrame:
        """The next binary message from the relay (pings are skipped)."""
        while True:
            first, second = await asyncio.wait_for(self.reader.readexactly(2), TIMEOUT_S)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack(">H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack(">Q", await self.reader.readexactly(8))
            payload = await asyncio.wait_for(self.reader.readexactly(length), TIMEOUT_S)
            if first & 0x0F == 0x2:
                return decode_server_frame(payload)
            assert first & 0x0F in (0x9, 0xA), f"opcode {first & 0x0F}"

    async def wait_closed_by_peer(self) -> None:
        """Return once the relay closed the TCP connection; TimeoutError if it does not."""
        try:
            while await asyncio.wait_for(self.reader.read(65_536), TIMEOUT_S):
                pass
        except ConnectionError:
            return

    def close(self) -> None:
        self.writer.close()
