"""The pages and the JSON API over a real messenger, with a real peer endpoint behind it."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import segno
from PIL import Image

from pigeon.ui.web.ports import AppMeshStatus, BitchatStatus, CourierStatus, GatewayStatus
from pigeon.ui.web.security import COOKIE_NAME
from tests.messenger.helpers import PASSPHRASE, Endpoint
from tests.ui.web.conftest import Browser, Site, pair, shuttle

AiohttpClient = Any


@pytest.fixture
def peer(tmp_path: Path, site: Site) -> Endpoint:
    endpoint = Endpoint(tmp_path / "peer", 900)
    endpoint.start(site.clock())
    return endpoint


async def _owner(site: Site, aiohttp_client: AiohttpClient) -> Browser:
    return Browser(await aiohttp_client(site.app), pair(site))


async def _add_peer(owner: Browser, peer: Endpoint, name: str = "Bob") -> str:
    form = aiohttp.FormData()
    form.add_field("name", name)
    form.add_field("card", peer.messenger.own_card_text())
    response = await owner.post("/contacts", data=form)
    assert response.status == 303, await response.text()
    location = response.headers["Location"]
    assert location.endswith("?flash=added")
    return location.split("/")[2].split("?")[0]


async def test_add_contact_by_pasted_card_and_verify(
    site: Site, peer: Endpoint, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    contact_id = await _add_peer(owner, peer)
    page = await (await owner.get(f"/contacts/{contact_id}")).text()
    assert "Bob" in page
    number = site.messenger.safety_number(contact_id)
    groups = [number[i : i + 5] for i in range(0, len(number), 5)]
    assert all(f"<span>{group}</span>" in page for group in groups)
    assert not site.messenger.contact(contact_id).verified
    wrong = "0" * len(number)
    refused = await owner.post(f"/contacts/{contact_id}/verify", data={"safety_number": wrong})
    assert refused.status == 400
    assert not site.messenger.contact(contact_id).verified
    done = await owner.post(f"/contacts/{contact_id}/verify", data={"safety_number": number})
    assert done.status == 303
    assert site.messenger.contact(contact_id).verified
    assert "verified" in await (await owner.get("/contacts")).text()


async def test_add_contact_refuses_bad_and_duplicate_cards(
    site: Site, peer: Endpoint, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    form = aiohttp.FormData()
    form.add_field("name", "Mallory")
    form.add_field("card", "PIGEON:NOTACARD")
    bad = await owner.post("/contacts", data=form)
    assert bad.status == 400
    assert "not a valid contact card" in await bad.text()
    await _add_peer(owner, peer)
    again = aiohttp.FormData()
    again.add_field("name", "Bob again")
    again.add_field("card", peer.messenger.own_card_text())
    duplicate = await owner.post("/contacts", data=again)
    assert duplicate.status == 409
    own = aiohttp.FormData()
    own.add_field("name", "Me")
    own.add_field("card", site.messenger.own_card_text())
    assert (await owner.post("/contacts", data=own)).status == 400
    assert len(site.messenger.contacts()) == 1


async def test_add_contact_from_a_photo_of_the_qr(
    site: Site, peer: Endpoint, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    card = peer.messenger.own_card_text()
    qr = segno.make(card, error="m")
    png = io.BytesIO()
    qr.save(png, kind="png", scale=5, border=6)
    photo = Image.open(io.BytesIO(png.getvalue())).convert("RGB")
    photo = photo.rotate(7, expand=True, fillcolor=(210, 200, 190)).resize((900, 880))
    jpeg = io.BytesIO()
    photo.save(jpeg, "JPEG", quality=85)
    form = aiohttp.FormData()
    form.add_field("name", "Bob")
    form.add_field("photo", jpeg.getvalue(), filename="IMG_0001.jpg", content_type="image/jpeg")
    response = await owner.post("/contacts", data=form)
    assert response.status == 303, await response.text()
    assert [c.name for c in site.messenger.contacts()] == ["Bob"]
    noise = aiohttp.FormData()
    noise.add_field("name", "Nobody")
    noise.add_field("photo", b"\xff\xd8 not really a jpeg", filename="x.jpg")
    refused = await owner.post("/contacts", data=noise)
    assert refused.status == 400
    assert "No QR code" in await refused.text()


async def test_chat_send_receive_and_states_over_api_and_websocket(
    site: Site, peer: Endpoint, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    contact_id = await _add_peer(owner, peer)
    peer_view = peer.messenger.add_contact(site.messenger.own_card_text(), "Alice", site.clock())
    socket = await owner.client.ws_connect(
        "/ws", headers={"Cookie": f"{COOKIE_NAME}={owner.token}", "Origin": owner.origin}
    )
    sent = await owner.post(
        f"/api/contacts/{contact_id}/messages", json={"text": "hello <b>Bob</b>"}
    )
    assert sent.status == 201
    message = (await sent.json())["message"]
    assert message["state"] == "queued"
    assert site.outgoing_calls  # the daemon was told to send now
    added = await socket.receive_json(timeout=5)
    assert added["type"] == "message_added"
    assert added["message"]["id"] == message["id"]
    shuttle(site.owner, peer, site.clock() + 1)
    states = set()
    while "delivered" not in states:
        event = await socket.receive_json(timeout=5)
        if event["type"] == "message_updated" and event["message"]["id"] == message["id"]:
            states.add(event["message"]["state"])
    assert [m.text for m in peer.messenger.conversation(peer_view.id)] == ["hello <b>Bob</b>"]
    peer.messenger.send_text(peer_view.id, "hi Alice", site.clock() + 2)
    shuttle(site.owner, peer, site.clock() + 3)
    while True:
        event = await socket.receive_json(timeout=5)
        if event["type"] == "message_added" and event["message"]["direction"] == "in":
            assert event["message"]["text"] == "hi Alice"
            break
    chat = await (await owner.get(f"/chat/{contact_id}")).text()
    assert "hello &lt;b&gt;Bob&lt;/b&gt;" in chat
    assert "hi Alice" in chat
    assert "delivered" in chat
    listing = await (await owner.get(f"/api/contacts/{contact_id}/messages")).json()
    assert [m["text"] for m in listing["messages"]] == ["hello <b>Bob</b>", "hi Alice"]
    assert (await owner.post(f"/api/contacts/{contact_id}/read")).status == 200
    await socket.close()


async def test_send_text_refuses_bad_bodies(
    site: Site, peer: Endpoint, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    contact_id = await _add_peer(owner, peer)
    path = f"/api/contacts/{contact_id}/messages"
    cases: list[tuple[Any, int]] = [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (json.dumps({"text": 5}).encode(), 400),
        (json.dumps({"text": ""}).encode(), 400),
        (json.dumps({"text": " \n\t"}).encode(), 400),  # blank texts are refused, see send_text
        (b'{"text": "a\\ud800b"}', 400),  # a lone surrogate, as JSON may escape it
        (b'{"text": "hi", "\\udfff": 1}', 400),
        (json.dumps({"text": "\u00e9" * 2100}).encode(), 413),
        (b"{" * 100_000, 400),
    ]
    for body, status in cases:
        response = await owner.post(path, data=body, headers={"Content-Type": "application/json"})
        assert response.status == status, body[:20]
        assert "error" in await response.json()
    lone = await owner.post(path, data=b'{"text": "a\\ud800b"}')
    assert "not valid Unicode" in (await lone.json())["error"]
    unknown = await owner.post("/api/contacts/nobody/messages", json={"text": "hi"})
    assert unknown.status == 404
    assert site.messenger.conversation(contact_id) == []


async def test_file_upload_and_download(
    site: Site, peer: Endpoint, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    contact_id = await _add_peer(owner, peer)
    peer_view = peer.messenger.add_contact(site.messenger.own_card_text(), "Alice", site.clock())
    payload = bytes(range(256)) * 300
    form = aiohttp.FormData()
    form.add_field("file", payload, filename="notes-1.bin", content_type="text/html")
    response = await owner.post(f"/api/contacts/{contact_id}/files", data=form)
    assert response.status == 201, await response.text()
    message = (await response.json())["message"]
    assert message["kind"] == "file"
    assert message["file_name"] == "notes-1.bin"
    download = await owner.get(message["file_url"])
    assert download.status == 200
    assert await download.read() == payload
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in download.headers["Content-Security-Policy"]
    for _ in range(5):
        shuttle(site.owner, peer, site.clock() + 1)
    received = [m for m in peer.messenger.conversation(peer_view.id) if m.kind == "file"]
    assert received
    assert peer.messenger.file_data(received[0].id)[1] == payload


async def test_a_file_name_that_is_not_utf8_is_refused(
    site: Site, peer: Endpoint, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    contact_id = await _add_peer(owner, peer)
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a\xffb.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=XX"}
    response = await owner.post(f"/api/contacts/{contact_id}/files", data=body, headers=headers)
    assert response.status == 400
    assert "UTF-8" in (await response.json())["error"]
    assert site.messenger.conversation(contact_id) == []


async def test_upload_limit(tmp_path: Path, aiohttp_client: AiohttpClient) -> None:
    from tests.ui.web.conftest import make_site

    site = make_site(tmp_path, max_upload_bytes=1000)
    peer = Endpoint(tmp_path / "peer", 901)
    peer.start(site.clock())
    owner = await _owner(site, aiohttp_client)
    contact_id = await _add_peer(owner, peer)
    form = aiohttp.FormData()
    form.add_field("file", b"x" * 1001, filename="big.bin")
    response = await owner.post(f"/api/contacts/{contact_id}/files", data=form)
    assert response.status == 400
    assert site.messenger.conversation(contact_id) == []
    incomplete = await owner.get("/api/messages/nothing/file")
    assert incomplete.status == 404


async def test_lock_and_unlock_through_the_page(site: Site, aiohttp_client: AiohttpClient) -> None:
    owner = await _owner(site, aiohttp_client)
    assert (await owner.post("/settings/lock")).status == 303
    assert site.messenger.is_locked
    page = await owner.get("/")
    assert page.status == 423
    assert "Unlock the vault" in await page.text()
    api = await owner.get("/api/contacts")
    assert api.status == 423
    assert (await owner.get("/node")).status == 200
    wrong = await owner.post("/unlock", data={"passphrase": "not it"})
    assert wrong.status == 403
    assert site.messenger.is_locked
    calls = len(site.outgoing_calls)
    right = await owner.post("/unlock", data={"passphrase": PASSPHRASE})
    assert right.status == 303
    assert not site.messenger.is_locked
    assert len(site.outgoing_calls) == calls + 1


async def test_change_passphrase_and_ephemeral(site: Site, aiohttp_client: AiohttpClient) -> None:
    owner = await _owner(site, aiohttp_client)
    short = await owner.post("/settings/passphrase", data={"old": PASSPHRASE, "new": "short"})
    assert short.status == 400
    wrong = await owner.post(
        "/settings/passphrase", data={"old": "nope", "new": "a much longer one"}
    )
    assert wrong.status == 400
    assert "not right" in await wrong.text()
    ok = await owner.post(
        "/settings/passphrase", data={"old": PASSPHRASE, "new": "a much longer one"}
    )
    assert ok.status == 303
    site.messenger.lock(site.clock())
    assert (await owner.post("/unlock", data={"passphrase": "a much longer one"})).status == 303
    before = site.messenger.ephemeral
    toggled = await owner.post("/settings/ephemeral", data={"enabled": "no" if before else "yes"})
    assert toggled.status == 303
    assert site.messenger.ephemeral is not before
    assert (await owner.post("/settings/ephemeral", data={"enabled": "maybe"})).status == 400


async def test_mailbox_hints_switch(site: Site, aiohttp_client: AiohttpClient) -> None:
    owner = await _owner(site, aiohttp_client)
    assert not site.messenger.mailbox_hints  # the config's default: off
    assert 'id="mailbox-hints-state">off<' in await (await owner.get("/settings")).text()
    on = await owner.post("/settings/mailbox-hints", data={"enabled": "yes"})
    assert on.status == 303
    assert site.messenger.mailbox_hints
    assert 'id="mailbox-hints-state">on<' in await (await owner.get("/settings")).text()
    assert (await owner.post("/settings/mailbox-hints", data={"enabled": "1"})).status == 400
    assert site.messenger.mailbox_hints
    await owner.post("/settings/mailbox-hints", data={"enabled": "no"})
    assert not site.messenger.mailbox_hints


async def test_rename_interval_remove(
    site: Site, peer: Endpoint, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    contact_id = await _add_peer(owner, peer)
    assert (
        await owner.post(f"/contacts/{contact_id}/rename", data={"name": "Robert"})
    ).status == 303
    assert site.messenger.contact(contact_id).name == "Robert"
    assert (await owner.post(f"/contacts/{contact_id}/rename", data={"name": " "})).status == 400
    assert (
        await owner.post(f"/contacts/{contact_id}/check-in", data={"minutes": "15"})
    ).status == 303
    assert site.messenger.contact(contact_id).check_in_interval_s == 900
    for bad in ("0", "abc", "nan", "1e9"):
        response = await owner.post(f"/contacts/{contact_id}/check-in", data={"minutes": bad})
        assert response.status == 400, bad
    assert (await owner.post("/settings/check-in", data={"minutes": "2"})).status == 303
    assert site.messenger.contact(contact_id).check_in_interval_s == 120
    assert (await owner.post(f"/contacts/{contact_id}/remove")).status == 303
    assert site.messenger.contacts() == []


async def test_own_card_page_and_profile(site: Site, aiohttp_client: AiohttpClient) -> None:
    owner = await _owner(site, aiohttp_client)
    page = await (await owner.get("/card")).text()
    assert site.messenger.own_card_text() in page
    assert "<svg" in page
    card = await (await owner.get("/api/card")).json()
    assert card["handle"] == site.messenger.own_handle()
    updated = await owner.post(
        "/settings/profile", data={"name": "Alice", "relays": "wss://relay.example.net/m"}
    )
    assert updated.status == 303
    assert site.messenger.own_card_text() != card["card"]
    bad = await owner.post("/settings/profile", data={"name": "A", "relays": "ftp://nope"})
    assert bad.status == 400


async def test_status_and_device_panel(site: Site, aiohttp_client: AiohttpClient) -> None:
    owner = await _owner(site, aiohttp_client)
    status = await (await owner.get("/api/status")).json()
    assert status["neighbours"] == [
        {"id": "7f3a", "rssi_dbm": -61},
        {"id": "c019", "rssi_dbm": None},
    ]
    assert status["uplink"] == "connecting"
    assert status["carried_to_relays"] == 7
    node = await (await owner.get("/node")).text()
    assert '<span data-stat="carried">7</span>' in node
    for text in ("7f3a", "-61 dBm", "wss://relay.example.net/mailbox", "3 h 2 min", "0.1.0"):
        assert text in node
    assert "7f3a" in await (await owner.get("/node/live")).text()
    frame = await owner.get("/api/panel/frame.png")
    assert frame.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(await frame.read())).size == (128, 64)
    assert "data-button" in await (await owner.get("/device")).text()
    assert (await owner.post("/api/panel/press", json={"button": "a"})).status == 200
    assert (await owner.post("/api/panel/release", json={"button": "a"})).status == 200
    assert (await owner.post("/api/panel/press", json={"button": "z"})).status == 400
    assert site.panel.edges == [("a", True), ("a", False)]
    site.panel.virtual = False
    assert (await owner.post("/api/panel/press", json={"button": "b"})).status == 409
    assert "data-button" not in await (await owner.get("/device")).text()


APP_MESH = AppMeshStatus(
    enabled=True,
    peers=2,
    relayed=153,
    handed_over=4,
    dropped=(("duplicate", 9), ("rate", 1)),
    bridged=12,
    bridge_pending=3,
    relays=("wss://relay.pigeonwire.app/ws",),
    relays_connected=1,
)


async def test_the_node_page_shows_the_app_mesh(site: Site, aiohttp_client: AiohttpClient) -> None:
    owner = await _owner(site, aiohttp_client)
    site.status.current = dataclasses.replace(site.status.current, appmesh=APP_MESH)
    node = await (await owner.get("/node")).text()
    for text in (
        'data-stat="app-peers">2<',
        'data-stat="app-relayed">153<',
        'data-stat="app-handed-over">4<',
        'data-stat="app-bridged">12 ',
        "(3 waiting)",
        "duplicate</span> 9",
        "rate</span> 1",
        "1 of 1 connected",
        "wss://relay.pigeonwire.app/ws",
    ):
        assert text in node, text
    status = await (await owner.get("/api/status")).json()
    assert status["appmesh"]["dropped"] == {"duplicate": 9, "rate": 1}
    assert status["appmesh"]["bridged"] == 12
    site.status.current = dataclasses.replace(site.status.current, appmesh=AppMeshStatus())
    assert "[appmesh] enabled = false" in await (await owner.get("/node/live")).text()


async def test_metrics_count_the_app_mesh_behind_pairing(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    stranger = Browser(owner.client)  # the same site, no session
    assert (await stranger.get("/metrics")).status in (303, 401)
    site.status.current = dataclasses.replace(site.status.current, appmesh=APP_MESH)
    reply = await owner.get("/metrics")
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await reply.text()
    for line in (
        "pigeon_node_neighbours 2",
        "pigeon_node_appmesh_enabled 1",
        "pigeon_node_appmesh_peers 2",
        "pigeon_node_appmesh_relayed_total 153",
        "pigeon_node_appmesh_handed_over_total 4",
        'pigeon_node_appmesh_dropped_total{reason="duplicate"} 9',
        'pigeon_node_appmesh_dropped_total{reason="rate"} 1',
        "pigeon_node_appmesh_bridged_total 12",
        "pigeon_node_appmesh_bridge_pending 3",
        "pigeon_node_appmesh_relays_connected 1",
    ):
        assert line in text.splitlines(), line
    assert text.count("# TYPE pigeon_node_appmesh_dropped_total counter") == 1


BITCHAT = BitchatStatus(
    enabled=True, links=4, peers=3, relayed=210, dropped=(("stale", 5),), public_heard=17
)


async def test_the_node_page_and_metrics_show_bitchat(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    site.status.current = dataclasses.replace(site.status.current, bitchat=BITCHAT)
    node = await (await owner.get("/node")).text()
    for text in (
        'data-stat="bitchat-peers">3 ',
        "(4 links)",
        'data-stat="bitchat-relayed">210<',
        'data-stat="bitchat-heard">17<',
        "stale</span> 5",
    ):
        assert text in node, text
    status = await (await owner.get("/api/status")).json()
    assert status["bitchat"] == {
        "enabled": True,
        "links": 4,
        "peers": 3,
        "relayed": 210,
        "dropped": {"stale": 5},
        "public_heard": 17,
        "courier": None,
        "gateway": None,
    }
    lines = (await (await owner.get("/metrics")).text()).splitlines()
    for line in (
        "pigeon_node_bitchat_enabled 1",
        "pigeon_node_bitchat_links 4",
        "pigeon_node_bitchat_peers 3",
        "pigeon_node_bitchat_relayed_total 210",
        'pigeon_node_bitchat_dropped_total{reason="stale"} 5',
        "pigeon_node_bitchat_public_heard_total 17",
    ):
        assert line in lines, line
    site.status.current = dataclasses.replace(site.status.current, bitchat=BitchatStatus())
    assert "[bitchat] enabled = false" in await (await owner.get("/node/live")).text()


async def test_the_node_page_and_metrics_show_the_bitchat_courier(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    assert 'data-stat="bitchat-courier-held"' not in await (await owner.get("/node")).text()
    courier = CourierStatus(
        held=12, held_bytes=3400, accepted=20, refused=2, handed_over=5, expired=3, sprayed=4
    )
    bitchat = dataclasses.replace(BITCHAT, courier=courier)
    site.status.current = dataclasses.replace(site.status.current, bitchat=bitchat)
    node = await (await owner.get("/node")).text()
    for text in ('data-stat="bitchat-courier-held">12 ', "5 handed over, 3 expired, 4 sprayed"):
        assert text in node, text
    status = await (await owner.get("/api/status")).json()
    assert status["bitchat"]["courier"] == {
        "held": 12,
        "held_bytes": 3400,
        "accepted": 20,
        "refused": 2,
        "handed_over": 5,
        "expired": 3,
        "sprayed": 4,
    }
    lines = (await (await owner.get("/metrics")).text()).splitlines()
    for line in (
        "pigeon_node_bitchat_courier_enabled 1",
        "pigeon_node_bitchat_courier_held 12",
        "pigeon_node_bitchat_courier_held_bytes 3400",
        "pigeon_node_bitchat_courier_accepted_total 20",
        "pigeon_node_bitchat_courier_refused_total 2",
        "pigeon_node_bitchat_courier_handed_over_total 5",
        "pigeon_node_bitchat_courier_expired_total 3",
        "pigeon_node_bitchat_courier_sprayed_total 4",
    ):
        assert line in lines, line


async def test_the_node_page_and_metrics_show_the_nostr_gateway(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    assert 'data-stat="bitchat-gateway-published"' not in await (await owner.get("/node")).text()
    gateway = GatewayStatus(
        relays=2,
        relays_connected=1,
        published=31,
        refused=4,
        queued=2,
        parked=6,
        fetched=3,
        rebroadcast=9,
    )
    bitchat = dataclasses.replace(BITCHAT, gateway=gateway)
    site.status.current = dataclasses.replace(site.status.current, bitchat=bitchat)
    node = await (await owner.get("/node")).text()
    for text in (
        'data-stat="bitchat-gateway-published">31 published',
        "1 of 2 relays connected; 2 waiting, 4 refused; 6 drops parked, 3 fetched, 9 relay",
    ):
        assert text in node, text
    status = await (await owner.get("/api/status")).json()
    assert status["bitchat"]["gateway"] == {
        "relays": 2,
        "relays_connected": 1,
        "published": 31,
        "refused": 4,
        "queued": 2,
        "parked": 6,
        "fetched": 3,
        "rebroadcast": 9,
    }
    lines = (await (await owner.get("/metrics")).text()).splitlines()
    for line in (
        "pigeon_node_bitchat_gateway_enabled 1",
        "pigeon_node_bitchat_gateway_relays_connected 1",
        "pigeon_node_bitchat_gateway_published_total 31",
        "pigeon_node_bitchat_gateway_refused_total 4",
        "pigeon_node_bitchat_gateway_queued 2",
        "pigeon_node_bitchat_gateway_parked_total 6",
        "pigeon_node_bitchat_gateway_fetched_total 3",
        "pigeon_node_bitchat_gateway_rebroadcast_total 9",
    ):
        assert line in lines, line


async def test_the_neighbourhood_page_without_bitchat_says_it_is_off(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    page = await (await owner.get("/neighbourhood")).text()
    assert "everything here is public" in page
    assert "bitchat is off on this node" in page
    reply = await owner.post("/neighbourhood", data={"nickname": "me", "text": "hello"})
    assert reply.status == 400


async def test_a_full_or_read_only_card_is_told_on_the_page(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    assert (await (await owner.get("/api/status")).json())["card_problem"] is None
    assert 'data-stat="card-problem"' not in await (await owner.get("/node")).text()
    problem = "SD card read-only: new messages are not saved. Relaying from memory."
    site.status.current = dataclasses.replace(site.status.current, card_problem=problem)
    assert (await (await owner.get("/api/status")).json())["card_problem"] == problem
    assert problem in await (await owner.get("/node")).text()
    assert problem in await (await owner.get("/node/live")).text()
