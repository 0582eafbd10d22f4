"""Web page benchmarks, written to bench/results/web.json; our app beside a bare aiohttp app.

Each figure is requests per second from one aiohttp client over loopback (sequential requests,
keep-alive), in alternating rounds of ROUND_REQUESTS, ours and the reference in the same run so
the ratio survives this shared, noisy machine:
(a) GET /api/status through the whole middleware chain (headers, Host and Origin checks, the
    session lookup) against a bare app answering the same JSON with no middleware;
(b) GET /chat/{id} with 100 messages against a bare app sending a prebuilt page of the same
    size: "chat_page_100_messages" as the owner sees it again unchanged (the conversation
    rendered once, kept until a messenger event), "chat_page_100_messages_cold" with the kept
    views and message fragments dropped before each request (vault reads and 100 message
    renders by message_html.py every time, as on the first view after unlocking);
(c) POST /api/contacts/{id}/messages (a text queued: one vault transaction on SQLCipher, events)
    against a bare app echoing the JSON body;
(d) the same as (a) over TLS (our certificate), against (a) over plain TCP: the TLS record cost.
Run: .venv/bin/python bench/bench_web.py
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import ssl
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from pigeon.messenger.api import Messenger
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import Argon2Params
from pigeon.ui.web import (
    FilePairingStore,
    LinkState,
    NodeStatus,
    Pairing,
    WebConfig,
    build_app,
    ensure_certificate,
)
from pigeon.ui.web.chat_views import CHAT_VIEWS
from pigeon.ui.web.security import COOKIE_NAME
from pigeon.ui.web.server import tls_context

ROUNDS = 5
ROUND_REQUESTS = 200
RESULTS = Path(__file__).parent / "results" / "web.json"


class Status:
    def status(self) -> NodeStatus:
        return NodeStatus("pigeon-ab12", "0.1.0", 100.0, "sim", LinkState.UP)


class Panel:
    def frame_png(self) -> bytes:
        return b""

    def buttons_available(self) -> bool:
        return False

    def press(self, button: str) -> None:
        del button

    def release(self, button: str) -> None:
        del button


def _messenger(root: Path) -> tuple[Messenger, str]:
    """A vault with one contact and 100 messages in the conversation."""
    cheap = Argon2Params(opslimit=1, memlimit_bytes=8192)
    owner = Messenger(
        VaultKeeper(DataDir(root / "a"), argon2=cheap), open_spool(DataDir(root / "a"))
    )
    owner.initialise("bench passphrase", time.time())
    peer = Messenger(
        VaultKeeper(DataDir(root / "b"), argon2=cheap), open_spool(DataDir(root / "b"))
    )
    peer.initialise("bench passphrase", time.time())
    contact = owner.add_contact(peer.own_card_text(), "Bob", time.time())
    for index in range(100):
        owner.send_text(contact.id, f"message number {index} " + "x" * 60, time.time())
    owner.take_outgoing()
    return owner, contact.id


async def _start(
    app: web.Application, context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    return runner, int(runner.addresses[0][1])


def _reference(status_json: dict[str, Any], page: bytes) -> web.Application:
    async def status(request: web.Request) -> web.Response:
        return web.json_response(status_json)

    async def chat(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html")

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await request.json(), status=201)

    app = web.Application()
    app.router.add_get("/api/status", status)
    app.router.add_get("/chat/{contact_id}", chat)
    app.router.add_post("/api/contacts/{contact_id}/messages", echo)
    return app


Request = Callable[[], Awaitable[None]]


async def _rate(request: Request) -> float:
    start = time.perf_counter()
    for _ in range(ROUND_REQUESTS):
        await request()
    return ROUND_REQUESTS / (time.perf_counter() - start)


async def _compare(ours: Request, reference: Request) -> dict[str, Any]:
    for warm in (ours, reference):
        await warm()
    rates: dict[str, list[float]] = {"ours": [], "reference": []}
    for _ in range(ROUNDS):
        rates["ours"].append(await _rate(ours))
        rates["reference"].append(await _rate(reference))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "per_s_median": {name: round(value) for name, value in medians.items()},
        "per_s_rounds": {name: [round(v) for v in values] for name, values in rates.items()},
        "ours_over_reference": round(medians["ours"] / medians["reference"], 3),
    }


def _getter(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], **kw: Any
) -> Request:
    async def go() -> None:
        async with session.get(url, headers=headers, **kw) as response:
            assert response.status == 200, response.status
            await response.read()

    return go


def _cold(app: web.Application, request: Request) -> Request:
    """`request` after dropping every kept chat view, so the page is read and rendered anew."""

    async def go() -> None:
        app[CHAT_VIEWS].clear()
        await request()

    return go


def _poster(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> Request:
    async def go() -> None:
        async with session.post(url, headers=headers, json={"text": "benchmark text"}) as response:
            assert response.status == 201, response.status
            await response.read()

    return go


async def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        messenger, contact_id = _messenger(root)
        pairing = Pairing(FilePairingStore(root / "sessions.json"), rng=random.Random(1).randbytes)
        token = pairing.submit(pairing.start(time.time()), time.time(), "bench")
        config = WebConfig("pigeon-ab12", ("127.0.0.1", "localhost"))
        app = build_app(messenger, Status(), Panel(), pairing, config)
        ensure_certificate(root / "tls", ["localhost"], ["127.0.0.1"])
        ours, ours_port = await _start(app)
        ours_tls, tls_port = await _start(
            _second_app(messenger, pairing, config), tls_context(root / "tls")
        )
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{ours_port}"
            headers = {
                "Cookie": f"{COOKIE_NAME}={token}",
                "Origin": f"https://127.0.0.1:{ours_port}",
            }
            async with session.get(f"{base}/api/status", headers=headers) as response:
                status_json = await response.json()
            async with session.get(f"{base}/chat/{contact_id}", headers=headers) as response:
                page = await response.read()
            reference, ref_port = await _start(_reference(status_json, page))
            ref = f"http://127.0.0.1:{ref_port}"
            results = {
                "status_json": await _compare(
                    _getter(session, f"{base}/api/status", headers),
                    _getter(session, f"{ref}/api/status", {}),
                ),
                "chat_page_100_messages": await _compare(
                    _getter(session, f"{base}/chat/{contact_id}", headers),
                    _getter(session, f"{ref}/chat/{contact_id}", {}),
                ),
                "chat_page_100_messages_cold": await _compare(
                    _cold(app, _getter(session, f"{base}/chat/{contact_id}", headers)),
                    _getter(session, f"{ref}/chat/{contact_id}", {}),
                ),
                "send_text": await _compare(
                    _poster(session, f"{base}/api/contacts/{contact_id}/messages", headers),
                    _poster(session, f"{ref}/api/contacts/{contact_id}/messages", {}),
                ),
                "status_json_tls_vs_plain": await _compare(
                    _getter(
                        session,
                        f"https://127.0.0.1:{tls_port}/api/status",
                        {**headers, "Origin": f"https://127.0.0.1:{tls_port}"},
                        ssl=False,
                    ),
                    _getter(session, f"{base}/api/status", headers),
                ),
            }
            await reference.cleanup()
        await ours.cleanup()
        await ours_tls.cleanup()
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "aiohttp": aiohttp.__version__,
            "load_average_at_start": list(os.getloadavg()),
        },
        "rounds": ROUNDS,
        "requests_per_round": ROUND_REQUESTS,
        "page_bytes": len(page),
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def _second_app(messenger: Messenger, pairing: Pairing, config: WebConfig) -> web.Application:
    """Another app over the same messenger and pairing (an Application serves one runner)."""
    return build_app(messenger, Status(), Panel(), pairing, config)


if __name__ == "__main__":
    asyncio.run(main())
