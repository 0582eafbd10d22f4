"""The web page over a real messenger (SQLCipher files in tmp_path) and small port stand-ins."""

from __future__ import annotations

import io
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from PIL import Image

from pigeon.messenger.api import Messenger
from pigeon.ui.web import (
    FilePairingStore,
    LinkState,
    Neighbour,
    NodeStatus,
    Pairing,
    RelayState,
    RelayStatus,
    WebConfig,
    build_app,
)
from pigeon.ui.web.errors import ResetFailed, ResetNotPending
from pigeon.ui.web.security import COOKIE_NAME
from tests.messenger.helpers import Endpoint

NODE_NAME = "pigeon-ab12"
ALLOWED_HOSTS = ("pigeon-ab12.local", "localhost", "127.0.0.1")


class Clock:
    """Wall time the test moves by hand, or the real time when `now` is None."""

    def __init__(self, start: float | None) -> None:
        self.now = start

    def __call__(self) -> float:
        return time.time() if self.now is None else self.now


class StaticStatus:
    """A NodeStatusSource that reports what the test set."""

    def __init__(self) -> None:
        self.current = NodeStatus(
            node_name=NODE_NAME,
            version="0.1.0",
            uptime_s=3 * 3600 + 125,
            radio_kind="sim",
            radio_state=LinkState.UP,
            neighbours=(Neighbour("7f3a", -61), Neighbour("c019", None)),
            spool_envelopes=12,
            spool_bytes=12 * 1024,
            uplink=LinkState.CONNECTING,
            relays=(RelayStatus("wss://relay.example.net/mailbox", RelayState.CONNECTED),),
            carried_to_relays=7,
        )

    def status(self) -> NodeStatus:
        return self.current


@dataclass
class RecordingPanel:
    """A DevicePanel with a fixed frame that records button edges."""

    virtual: bool = True
    edges: list[tuple[str, bool]] = field(default_factory=list)
    sleeping: bool = False

    def frame_png(self) -> bytes:
        image = Image.new("1", (128, 64), 0)
        image.paste(1, (10, 10, 60, 30))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    def buttons_available(self) -> bool:
        return self.virtual

    def asleep(self) -> bool:
        return self.sleeping

    def sleep_after_s(self) -> float:
        return 60.0

    def press(self, button: str) -> None:
        self.edges.append((button, True))

    def release(self, button: str) -> None:
        self.edges.append((button, False))


@dataclass
class ArmedReset:
    """An IdentityReset the test arms by hand (as the buttons would); a confirmed reset revokes
    every browser, as the daemon's does, or fails at `fail_step`."""

    pairing: Pairing
    armed: bool = False
    fail_step: str | None = None
    confirmed: int = 0

    def pending(self) -> bool:
        return self.armed

    def cancel(self) -> None:
        self.armed = False

    async def confirm(self) -> None:
        if not self.armed:
            raise ResetNotPending("no reset is pending")
        self.armed = False
        if self.fail_step is not None:
            raise ResetFailed(self.fail_step)
        self.confirmed += 1
        self.pairing.revoke_all()


@dataclass
class Site:
    """Everything behind one app: the owner's endpoint, pairing, ports, clock, and packets."""

    owner: Endpoint
    pairing: Pairing
    status: StaticStatus
    panel: RecordingPanel
    clock: Clock
    outgoing_calls: list[Sequence[object]]
    app: web.Application
    reset: ArmedReset

    @property
    def messenger(self) -> Messenger:
        return self.owner.messenger


def make_site(
    root: Path,
    *,
    seed: int = 11,
    real_time: bool = False,
    max_upload_bytes: int = 25 * 1024 * 1024,
    panel: Any = None,
    twelve_hour: bool = False,
) -> Site:
    """A started owner endpoint and an app over it (not served yet)."""
    the_clock = Clock(None if real_time else 1_750_000_000.0)
    owner = Endpoint(root / "owner", seed)
    owner.start(the_clock())
    pairing = Pairing(
        FilePairingStore(root / "web-sessions.json"), rng=random.Random(seed).randbytes
    )
    status, panel = StaticStatus(), panel or RecordingPanel()
    calls: list[Sequence[object]] = []
    config = WebConfig(
        node_name=NODE_NAME,
        allowed_hosts=ALLOWED_HOSTS,
        max_upload_bytes=max_upload_bytes,
        clock=the_clock,
        on_outgoing=calls.append,
        twelve_hour=twelve_hour,
    )
    reset = ArmedReset(pairing)
    app = build_app(owner.messenger, status, panel, pairing, config, reset=reset)
    return Site(owner, pairing, status, panel, the_clock, calls, app, reset)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


class Browser:
    """A test client that behaves like a same-origin browser holding (or lacking) a session."""

    def __init__(self, client: TestClient[Any, Any], token: str | None = None) -> None:
        self.client = client
        self.token = token

    @property
    def origin(self) -> str:
        return f"https://{self.client.host}:{self.client.port}"

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        found = {"Origin": self.origin}
        if self.token is not None:
            found["Cookie"] = f"{COOKIE_NAME}={self.token}"
        found.update(extra or {})
        return found

    async def get(self, path: str, **kwargs: Any) -> Any:
        headers = self.headers(kwargs.pop("headers", None))
        return await self.client.get(path, headers=headers, allow_redirects=False, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Any:
        headers = self.headers(kwargs.pop("headers", None))
        return await self.client.post(path, headers=headers, allow_redirects=False, **kwargs)


def pair(site: Site) -> str:
    """A session token, as if the owner had typed the OLED code."""
    return site.pairing.submit(site.pairing.start(site.clock()), site.clock(), "test browser")


def shuttle(a: Endpoint, b: Endpoint, now: float, rounds: int = 20) -> int:
    """Move packets both ways directly (no mesh) until quiet, noting each as handed on; returns
    how many were delivered."""
    queue = [(p, a) for p in a.messenger.tick(now) + a.messenger.take_outgoing()]
    queue += [(p, b) for p in b.messenger.tick(now) + b.messenger.take_outgoing()]
    moved = 0
    for _ in range(rounds):
        if not queue:
            break
        following = []
        for packet, sender in queue:
            sender.messenger.note_sent([packet.packet_id], now)
            receiver = b if sender is a else a
            if packet.recipient_tag in receiver.messenger.served_tags(now):
                moved += 1
                replies = receiver.messenger.handle_packets([packet], now)
                following.extend((p, receiver) for p in replies)
        queue = following
    return moved
