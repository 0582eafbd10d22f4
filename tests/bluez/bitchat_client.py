"""Drives PyPI's `bitchat-cli` 0.2.3 headless in the BLE VM: one process per client, one adapter.

Usage (inside the VM): `/opt/venv/bin/python bitchat_client.py hciN NICKNAME`. Lines on stdin
are commands (JSON): `{"say": "text"}` types a public message as the prompt would, `{"quit":
true}` leaves as Ctrl-D would. Events go to stdout as lines `@@ {json}` among bitchat-cli's own
output: `ready` (its peer id and signing key), `links` (the devices it is connected to),
`frame` (every notification it receives, raw, before bitchat-cli reads it), `message` (a line
bitchat-cli added to its chat, sender nickname and text), `said`.

It runs bitchat-cli's own `BLEService` and `ChatState` (what its `main` and `CLI` do), changing
no line of it. Two things differ from `bitchat-cli` typed in a terminal, both at its seams:
- its scanner is bound to one adapter (`bitchat_cli.ble_service.BleakScanner` is given the
  adapter): bitchat-cli has no adapter option, and bleak would take the first powered adapter
  for both clients; its clients dial from the adapter the scanner saw a device on;
- its peer id is derived from its Noise key (first 8 bytes of SHA-256), as bitchat requires of
  an announce (`main` draws 8 random bytes, which real phones and the node's chat refuse).
This file imports nothing of `pigeon`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import sys
from typing import Any

POLL_S = 0.2


def emit(event: str, **fields: Any) -> None:
    """One event line for the guest script."""
    sys.stdout.write("@@ " + json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def _commands(queue: asyncio.Queue[dict[str, Any]]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            await queue.put({"quit": True})
            return
        if line.strip():
            await queue.put(json.loads(line))


async def main(adapter: str, nickname: str) -> None:
    from bitchat_cli import ble_service
    from bitchat_cli.chat_state import ChatState
    from bleak import BleakScanner

    ble_service.BleakScanner = functools.partial(  # type: ignore[misc]
        BleakScanner, bluez={"adapter": adapter}
    )
    state = ChatState(nickname=nickname, my_peer_id=bytes(8))
    state.my_peer_id = hashlib.sha256(state.identity.noise_public_key_bytes()).digest()[:8]
    service = ble_service.BLEService(state, lambda: None)
    read = service._on_notify

    def on_notify(characteristic: Any, data: bytearray) -> None:
        emit("frame", hex=bytes(data).hex())
        read(characteristic, data)

    service._on_notify = on_notify  # type: ignore[method-assign]
    emit(
        "ready",
        peer_id=state.my_peer_id.hex(),
        signing_key=state.identity.signing_public_key_bytes().hex(),
        noise_key=state.identity.noise_public_key_bytes().hex(),
    )
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    tasks = [
        asyncio.create_task(service.run()),
        asyncio.create_task(_commands(queue)),
    ]
    links: list[str] = []
    told = 0
    try:
        while True:
            if sorted(state.connected_addresses) != links:
                links = sorted(state.connected_addresses)
                emit("links", addresses=links)
            for message in state.messages[told:]:
                emit("message", sender=message.sender, text=message.content)
            told = len(state.messages)
            try:
                command = await asyncio.wait_for(queue.get(), POLL_S)
            except TimeoutError:
                continue
            if command.get("quit"):
                break
            if "say" in command:
                await service.send_public_message(str(command["say"]))
                emit("said", text=command["say"])
    finally:
        for task in tasks:
            task.cancel()
        await service.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
