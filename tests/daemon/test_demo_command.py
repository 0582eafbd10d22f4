"""`pigeon demo` (what `make run` starts): it prints the page, the pairing code and Robin's card,
and Ctrl-C stops it cleanly."""

from __future__ import annotations

import asyncio
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

from .conftest import free_port

BANNER_TIMEOUT_S = 60.0


def test_demo_greets_then_stops_on_ctrl_c(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "pigeon.cli", "demo", "--data", str(tmp_path / "demo"),
        "--https-port", str(free_port()), "--http-port", str(free_port()),
        "--relay-port", str(free_port()),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + BANNER_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline().decode()
            lines.append(line)
            if "Ctrl-C stops everything" in line or not line:
                break
        text = "".join(lines)
        assert "https://localhost:" in text, text
        assert re.search(r"^\s+\d{6}\s+\(valid for 2 minutes", text, re.MULTILINE)
        assert "PIGEON:" in text
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert b"demo stopped" in rest


class DemoProcess:
    """`pigeon demo` as a subprocess: its stdout read line by line in a thread, commands typed
    on its stdin."""

    def __init__(self, data: Path, ports: tuple[int, int, int]) -> None:
        command = [
            sys.executable, "-m", "pigeon.cli", "demo", "--data", str(data),
            "--https-port", str(ports[0]), "--http-port", str(ports[1]),
            "--relay-port", str(ports[2]),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.put(raw.decode())

    async def until(self, pattern: str, timeout_s: float = BANNER_TIMEOUT_S) -> str:
        """Everything printed from the last match up to the line matching `pattern`."""
        deadline = time.monotonic() + timeout_s
        chunk: list[str] = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.05)
                continue
            chunk.append(line)
            self.seen.append(line)
            if re.search(pattern, line):
                return "".join(chunk)
        raise AssertionError(f"{pattern!r} never printed; got:\n{''.join(self.seen)}")

    def type(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class Owner:
    """The owner's browser, as plain HTTPS requests to the demo's page."""

    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.base = f"https://localhost:{port}"

    async def post(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        headers = {"Origin": self.base}
        return await self.session.post(
            self.base + path, headers=headers, ssl=False, allow_redirects=False, **kwargs
        )


def _code(text: str) -> str:
    found = re.search(r"(?:New pairing code: |^\s+)(\d{6})\s", text, re.MULTILINE)
    assert found, text
    return found.group(1)


async def test_the_demo_guides_waits_for_the_passphrase_and_says_where_things_stand(
    tmp_path: Path,
) -> None:
    ports = (free_port(), free_port(), free_port())
    data = tmp_path / "demo"
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        owner = Owner(session, ports[0])
        demo = DemoProcess(data, ports)
        try:
            first = await demo.until("Ctrl-C stops everything")
            assert "Robin's node shows this safety number for you" in first
            assert re.search(r"^\s+(\d{5} ){11}\d{5}$", first, re.MULTILINE), first
            card = re.search(r"PIGEON:\S+", first)
            assert card is not None
            # Before any browser is paired, `pair` stands in for the unreachable buttons.
            demo.type("pair")
            fresh = _code(await demo.until("New pairing code"))
            assert fresh != _code(first)
            paired = await owner.post("/pair", data={"code": fresh})
            assert paired.status == 303, await paired.text()
            await demo.until("A browser is paired")
            added = await owner.post("/contacts", data={"name": "Robin", "card": card.group()})
            assert added.status == 303, await added.text()
            contact_id = added.headers["Location"].split("/")[2].split("?")[0]
            sent = await owner.post(
                f"/api/contacts/{contact_id}/messages", json={"text": "hello from the test"}
            )
            assert sent.status == 201
            # Robin's side of the conversation shows on the demo's terminal.
            await demo.until("Robin's node received from you: hello from the test")
            await demo.until("Robin answered: Robin got: hello from the test")
            demo.type("robin")
            screen = await demo.until("Robin: Robin got: hello from the test")
            assert "you: hello from the test" in screen
            bound = await owner.post("/settings/passphrase", data={"new": "demo passphrase"})
            assert bound.status == 303
        finally:
            assert demo.stop() == 0

        # A restart: the vault waits for the passphrase, and the demo waits with it (Ctrl-C
        # still stops it meanwhile).
        demo = DemoProcess(data, ports)
        try:
            waiting = await demo.until("Ctrl-C stops everything")
        finally:
            assert demo.stop() == 0
        assert "waits for your passphrase" in waiting
        assert f"https://localhost:{ports[0]}/unlock" in waiting
        assert "No browser is paired" not in waiting
        demo = DemoProcess(data, ports)
        try:
            await demo.until("waits for your passphrase")
            await demo.until("Ctrl-C stops everything")
            unlocked = await owner.post("/unlock", data={"passphrase": "demo passphrase"})
            assert unlocked.status == 303, await unlocked.text()
            state = await demo.until("Ctrl-C stops everything")
            assert "1 browser paired" in state
            assert "Robin is in your contacts, not verified yet." in state
            assert "pairing code your node's OLED shows" not in state
            assert "add Robin with this card" not in state
            assert "bound to your passphrase" in state
        finally:
            assert demo.stop() == 0
