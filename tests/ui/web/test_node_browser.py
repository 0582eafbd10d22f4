"""Issue 16 in headless Chromium against whole running nodes (`pigeon.daemon.node.Node`: the
simulated radio, the web page over real HTTPS, the real SQLCipher vault):

- the owner pastes a Pigeon app link, verifies the app's safety number and chats with a
  scripted app-protocol peer (vodozemac and pynacl, the app's formats only) over the simulated
  app mesh, and then over a real `pigeon relay` process with no radio path between them; the
  peer's acks show as "delivered". Both key orders: by the app's lower-key-initiates rule
  either the owner's first text opens the session, or the owner's rehandshake request makes
  the app user open it and the waiting text follows;
- a node-to-node conversation made before the move to Olm (a vault of the Noise-era schema)
  shows on the page after the node migrated it, and goes on: the texts the old session lost and
  a new one reach the old contact, another node, show as delivered, and Bob reads them on his
  node's page.
"""

from __future__ import annotations

import base64
import random
import shutil
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from pigeon.config import AppMeshSection
from pigeon.daemon.node import Node
from pigeon.relay.app_protocol import AppEnvelope
from pigeon.sim.app_phone import APP_SERVICE, PHONE_VALUE_LENGTH, AppPhone
from pigeon.transport.sim import RadioParams, SimMedium
from tests.crypto.plain_app_peer import relay_urls_of_link
from tests.daemon.app_nodes import app_link, app_user, node_config, on_medium, opened, running
from tests.daemon.conftest import wait_until
from tests.messenger.app_peer import ACK, MESSAGE, REHANDSHAKE, X3DH_INIT, ScriptedAppPeer
from tests.messenger.helpers import PASSPHRASE
from tests.messenger.test_app_contacts import app_safety_number_from_facts
from tests.messenger.test_upgrade_noise_era import ALICE_AT_BOB, BOB_AT_ALICE, FIXTURES
from tests.relay.appclient import AppClient
from tests.relay.process import RelayProcess, launch_relay
from tests.ui.web.test_browser import PHONE, _shot, browser, pytestmark

__all__ = ["browser", "pytestmark"]

NETWORK_MS = 15_000  # how long the page may wait for what crosses the radio or the relay
OLD_CONVERSATION = [  # Alice's chat with Bob in the Noise-era vaults (see their README)
    "before the upgrade",
    "answered before the upgrade",
    "lost 0 before the upgrade",
    "lost 1 before the upgrade",
]


async def paired_page(browser: Browser, node: Node) -> tuple[Page, str]:
    """A phone-sized page paired with `node` by the code its OLED would show."""
    assert node.web_ports is not None
    base = f"https://127.0.0.1:{node.web_ports[0]}"
    context = await browser.new_context(ignore_https_errors=True, viewport=PHONE)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{base}/pair")
    await page.fill("#code", node.pairing.start(time.time()))
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/?flash=paired")
    await expect(page.locator("#conn")).to_have_class("conn live")
    assert errors == []
    return page, base


async def add_and_verify(page: Page, base: str, peer: ScriptedAppPeer, link: str) -> str:
    """Paste the link, check the page's safety number against the app's algorithm computed
    here from the two keys, confirm it; returns the contact id."""
    await page.goto(f"{base}/contacts")
    await page.fill("#card", link)
    await page.click("#add button[type=submit]")
    await expect(page.locator(".flash")).to_contain_text("Contact added")
    contact_id = page.url.split("/contacts/")[1].split("?")[0]
    await expect(page.locator("#kind")).to_contain_text("Pigeon app contact")
    shown = "".join(await page.locator("#safety-number span").all_inner_texts())
    assert shown == app_safety_number_from_facts(peer.owner, peer.peer.identity_key)
    await page.click("#mark-verified")
    await expect(page.locator("#safety")).to_contain_text("You confirmed this number")
    return contact_id


async def send_from_page(page: Page, base: str, contact_id: str, text: str) -> None:
    await page.goto(f"{base}/chat/{contact_id}")
    await expect(page.locator("#conn")).to_have_class("conn live")
    await page.fill("#text", text)
    await page.press("#text", "Enter")
    await expect(page.locator(".msg.out").last.locator(".bubble")).to_have_text(text)


async def expect_delivered(page: Page) -> None:
    """The owner's latest text turns "delivered" (an ack or receipt came back)."""
    state = page.locator(".msg.out").last.locator("[data-role=state]")
    await expect(state).to_have_text("delivered", timeout=NETWORK_MS)


# -- over the simulated app mesh ------------------------------------------------------------------


@pytest.mark.parametrize("owner_lower", [True, False], ids=["owner-starts", "app-user-starts"])
async def test_the_owner_chats_with_an_app_user_over_the_app_mesh(
    tmp_path: Path, browser: Browser, owner_lower: bool
) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(5))
    node = on_medium(
        node_config(tmp_path, "pigeon-app-mesh", AppMeshSection(relays=())), medium, (40.0, 0.0)
    )
    async with running(node):
        peer, _ = app_user(node, owner_lower=owner_lower)
        phone = AppPhone(peer.peer.identity_key, random.Random(6))
        await phone.start(
            medium.transport("ada", 0.0, 0.0, service=APP_SERVICE, frame_limit=PHONE_VALUE_LENGTH)
        )
        try:
            await wait_until(lambda: node.board.status().appmesh.peers == 1, 10.0)
            page, base = await paired_page(browser, node)
            contact_id = await add_and_verify(page, base, peer, app_link(peer, []))

            await send_from_page(page, base, contact_id, "Hello over the app mesh")
            if owner_lower:  # the first text leaves at once: an X3DH init and the message
                inbox = await phone.wait_for_inbox(2, 10.0)
                assert [opened(peer, packet) for packet in inbox] == [X3DH_INIT, MESSAGE]
            else:  # the owner asks; the app user opens the session; the text follows
                inbox = await phone.wait_for_inbox(1, 10.0)
                assert opened(peer, inbox[0]) == REHANDSHAKE
                await phone.send_envelope(peer.initiate())
                inbox = await phone.wait_for_inbox(3, 10.0)
                assert [opened(peer, packet) for packet in inbox[1:]] == [ACK, MESSAGE]
                assert peer.acks == [b"\x00"]  # the app's "established" ack
            assert peer.received[0]["text"] == "Hello over the app mesh"
            await phone.send_envelope(peer.ack(str(peer.received[0]["id"])))
            await expect_delivered(page)
            sent_to_peer = len(inbox)

            # The app user's reply shows live and is acked in the app's framing.
            reply, reply_id = peer.text("Hi node, from the app")
            await phone.send_envelope(reply)
            await expect(page.locator(".msg.in").last.locator(".bubble")).to_have_text(
                "Hi node, from the app", timeout=NETWORK_MS
            )
            inbox = await phone.wait_for_inbox(sent_to_peer + 1, 10.0)
            assert opened(peer, inbox[sent_to_peer]) == ACK
            assert peer.acks[-1] == str(reply_id).upper().encode()
            await _shot(page, "node-app-mesh-chat")
            await page.context.close()
        finally:
            await phone.aclose()


# -- over a real `pigeon relay` -------------------------------------------------------------------


@pytest.mark.parametrize("owner_lower", [True, False], ids=["owner-starts", "app-user-starts"])
async def test_the_owner_chats_with_an_app_user_through_a_pigeon_relay(
    tmp_path: Path, browser: Browser, owner_lower: bool
) -> None:
    relay = await launch_relay(tmp_path / "relay", tmp_path / "relay.log")
    try:
        await _chat_through(relay, tmp_path, browser, owner_lower)
    finally:
        relay.process.terminate()
        await relay.process.wait()


async def _chat_through(
    relay: RelayProcess, tmp_path: Path, browser: Browser, owner_lower: bool
) -> None:
    ws_url = relay.url.removesuffix("/v1") + "/ws"
    appmesh = AppMeshSection(relays=(ws_url,), relay_private_addresses=True)
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(5))  # the node alone on it
    node = on_medium(node_config(tmp_path, "pigeon-app-relay", appmesh), medium, (0.0, 0.0))
    async with running(node):
        peer, signing = app_user(node, owner_lower=owner_lower)
        phone = await AppClient.connect(relay.url)
        try:
            _, answer = await phone.subscribe_and_auth(signing)
            assert '"authenticated"' in answer
            page, base = await paired_page(browser, node)
            # The app deposits only at the relays the owner's card advertises (and signed).
            await page.goto(f"{base}/card")
            owner_link = await page.locator("#own-app-card").input_value()
            assert relay_urls_of_link(owner_link) == [ws_url]
            contact_id = await add_and_verify(page, base, peer, app_link(peer, [ws_url]))

            await send_from_page(page, base, contact_id, "Hello through the relay")
            if owner_lower:
                assert await read_mailbox(phone, peer, 2) == [X3DH_INIT, MESSAGE]
            else:
                assert await read_mailbox(phone, peer, 1) == [REHANDSHAKE]
                await phone.publish(peer.owner, _packet(peer.initiate()))
                assert await read_mailbox(phone, peer, 2) == [ACK, MESSAGE]
            assert peer.received[0]["text"] == "Hello through the relay"

            # The app publishes its ack, then a reply, to the owner's mailbox.
            await phone.publish(peer.owner, _packet(peer.ack(str(peer.received[0]["id"]))))
            await expect_delivered(page)
            reply, reply_id = peer.text("Hi node, through the relay")
            await phone.publish(peer.owner, _packet(reply))
            await expect(page.locator(".msg.in").last.locator(".bubble")).to_have_text(
                "Hi node, through the relay", timeout=NETWORK_MS
            )
            assert await read_mailbox(phone, peer, 1) == [ACK]
            assert peer.acks[-1] == str(reply_id).upper().encode()
            assert node.board.status().appmesh.peers == 0  # no radio path: all by the relay
            await page.context.close()
        finally:
            await phone.close()


async def read_mailbox(phone: AppClient, peer: ScriptedAppPeer, count: int) -> list[int]:
    """The types of the next `count` envelopes pushed to the app user's mailbox, each read by
    the peer (the relay's other answers, such as "published", are passed over)."""
    kinds: list[int] = []
    while len(kinds) < count:
        frame = await phone.receive()
        if isinstance(frame, AppEnvelope):
            kinds.append(opened(peer, _b64(frame.ciphertext)))
    return kinds


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


_PACKET_IDS = iter(range(1, 1_000))


def _packet(envelope: bytes) -> bytes:
    """A whole app mesh packet as the app publishes it: version 1, TTL 8, a fresh id."""
    return bytes((1, 8)) + next(_PACKET_IDS).to_bytes(16, "big") + envelope


# -- a conversation from before the move to Olm ---------------------------------------------------


def noise_era_node(root: Path, name: str, medium: SimMedium, x: float, *, web: bool) -> Node:
    """A node on a vault written by the last Noise-era code, opened by its device passphrase."""
    config = node_config(root, name, AppMeshSection(enabled=False))
    data = Path(config.node.data_dir)
    data.mkdir(parents=True)
    for file in ("vault.header", "vault.db"):
        shutil.copyfile(FIXTURES / name / file, data / file)
    (data / "vault.autounlock").write_text(PASSPHRASE, encoding="ascii")
    return on_medium(config, medium, (x, 0.0), web=web)


async def test_a_conversation_from_before_olm_goes_on_in_the_browser(
    tmp_path: Path, browser: Browser
) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(7))
    alice = noise_era_node(tmp_path, "alice", medium, 0.0, web=True)
    bob = noise_era_node(tmp_path, "bob", medium, 10.0, web=True)
    async with running(alice, bob):
        page, base = await paired_page(browser, alice)
        await page.goto(f"{base}/chat/{BOB_AT_ALICE}")
        bubbles = page.locator(".msg .bubble")
        await expect(bubbles).to_have_text(OLD_CONVERSATION)
        states = page.locator(".msg.out [data-role=state]")
        await expect(states.first).to_have_text("delivered")
        # The texts the old session never got across go by themselves, on Olm.
        await expect(states).to_have_text(["delivered"] * 3, timeout=NETWORK_MS)

        await send_from_page(page, base, BOB_AT_ALICE, "after the upgrade, from the page")
        await expect_delivered(page)
        # Bob reads it on his node's page, after everything before it.
        bobs_page, bobs_base = await paired_page(browser, bob)
        await bobs_page.goto(f"{bobs_base}/chat/{ALICE_AT_BOB}")
        await expect(bobs_page.locator(".msg .bubble")).to_have_text(
            [*OLD_CONVERSATION, "after the upgrade, from the page"]
        )
        await expect(bobs_page.locator(".msg.in").last.locator(".bubble")).to_have_text(
            "after the upgrade, from the page"
        )
        at_bob = [(m.text, m.state) for m in bob.messenger.conversation(ALICE_AT_BOB)]
        assert at_bob == [
            (text, "delivered" if text.startswith("answered") else "received")
            for text in [*OLD_CONVERSATION, "after the upgrade, from the page"]
        ]
        await _shot(page, "node-noise-era-chat")
        await page.context.close()
        await bobs_page.context.close()
