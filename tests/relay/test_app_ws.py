"""The Pigeon app's relay protocol on a real `pigeon relay` (loopback), frame by frame.

Each test names the behaviour of the app's relay it checks (`pigeon-relay/src/tests.rs` at
ef7dc11, read as a specification), or says where ours deliberately differs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path

import aiohttp
import pytest

from pigeon.crypto.signing import SigningKey
from pigeon.relay import app_protocol as app
from pigeon.relay.protocol import Envelope, Stored
from pigeon.relay.server import RunningRelay
from tests.relay.appclient import AppClient, app_url
from tests.relay.conftest import StartRelay, WallClock
from tests.relay.rawclient import RawClient

DAY_S = 24 * 3600


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def eid_text(ciphertext: bytes) -> str:
    return hashlib.sha256(ciphertext).digest()[:16].hex()


async def reader(relay: RunningRelay, key: SigningKey) -> AppClient:
    client = await AppClient.connect(relay.url)
    _, answer = await client.subscribe_and_auth(key)
    assert answer == '{"type":"ok","detail":"authenticated"}'
    return client


async def envelopes(client: AppClient, count: int) -> list[app.AppEnvelope]:
    got = []
    for _ in range(count):
        frame = await client.receive()
        assert isinstance(frame, app.AppEnvelope), frame
        got.append(frame)
    return got


async def nothing_more(client: AppClient, wait_s: float = 0.3) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await client.ws.receive(timeout=wait_s)


async def publish(client: AppClient, key: bytes, ciphertext: bytes) -> app.AppServerFrame:
    await client.publish(key, ciphertext)
    return await client.receive()


async def metric(relay: RunningRelay, line_start: str) -> int:
    http = relay.url.replace("ws://", "http://").removesuffix("/v1")
    async with aiohttp.ClientSession() as session, session.get(f"{http}/metrics") as reply:
        for line in (await reply.text()).splitlines():
            if line.startswith(line_start + " "):
                return int(line.split()[-1])
    raise AssertionError(f"no metric {line_start}")


# --- tests.rs: addresses, publish --------------------------------------------------------


async def test_mailbox_addresses_must_be_exactly_32_bytes_of_hex(start: StartRelay) -> None:
    # tests.rs: valid_address_requires_exactly_32_bytes
    relay = await start()
    client = await AppClient.connect(relay.url)
    for bad in ("dead", "ab" * 33, "zz" * 32, " " + "ab" * 31 + "a", ""):
        await client.send(type="subscribe", mailbox=bad)
        assert await client.receive_text() == '{"type":"error","message":"invalid mailbox"}'
        await client.send(type="publish", recipient=bad, ciphertext="Y2lwaGVy")
        assert await client.receive_text() == '{"type":"error","message":"invalid recipient"}'
    assert await metric(relay, "pigeon_relay_stored_envelopes") == 0
    await client.close()


async def test_publish_refuses_empty_oversized_and_non_base64_ciphertext(
    start: StartRelay,
) -> None:
    # tests.rs: publish_rejects_empty_and_oversized_ciphertext (256 Ki base64 characters), and
    # ours: the ciphertext must be canonical base64 of at most max_envelope_bytes bytes.
    relay = await start(max_envelope_bytes=300_000)
    key = SigningKey.generate().public_key.hex()
    client = await AppClient.connect(relay.url)
    too_long = "A" * (app.MAX_CIPHERTEXT_CHARS + 4)
    for bad in ("", too_long, "not base64!!", "Y2lwaGVy\n", "Y2lwaGVS=", "Y2lwaGV", "-_-_"):
        await client.send(type="publish", recipient=key, ciphertext=bad)
        assert await client.receive_text() == '{"type":"error","message":"invalid ciphertext"}'
    assert await metric(relay, "pigeon_relay_stored_envelopes") == 0
    await client.close()


async def test_the_smaller_of_both_ciphertext_caps_applies(start: StartRelay) -> None:
    relay = await start(max_envelope_bytes=100)
    key = SigningKey.generate().public_key
    client = await AppClient.connect(relay.url)
    assert isinstance(await publish(client, key, bytes(100)), app.Published)
    assert await publish(client, key, bytes(101)) == app.AppError("invalid ciphertext")
    await client.close()


async def test_a_weak_recipient_key_is_refused(start: StartRelay) -> None:
    # Ours is stricter: the app's relay takes any 32 bytes; no one can read a small-order key.
    relay = await start()
    client = await AppClient.connect(relay.url)
    small_order = bytes([1]) + bytes(31)
    assert await publish(client, small_order, b"x") == app.AppError("invalid recipient")
    await client.close()


async def test_publish_lands_in_one_mailbox_and_is_answered_with_its_id(
    start: StartRelay,
) -> None:
    # tests.rs: publish_is_addressed_to_one_mailbox
    relay = await start()
    alice, bob = SigningKey.generate(), SigningKey.generate()
    client = await AppClient.connect(relay.url)
    await client.publish(alice.public_key, b"cipher")
    assert await client.receive_text() == json.dumps(
        {"type": "published", "id": eid_text(b"cipher")}, separators=(",", ":")
    )
    got = await envelopes(await reader(relay, alice), 1)
    assert got[0].ciphertext == b64(b"cipher")
    await nothing_more(await reader(relay, bob))


# --- tests.rs: delivery ------------------------------------------------------------------


async def test_publish_before_subscribe_is_delivered_after_ok_in_order(
    start: StartRelay, wall_clock: WallClock
) -> None:
    # tests.rs: flush_queue_replays_everything_stored
    relay = await start()
    owner = SigningKey.generate()
    depositor = await AppClient.connect(relay.url)
    for text in (b"one", b"two", b"three"):
        assert isinstance(await publish(depositor, owner.public_key, text), app.Published)
    client = await reader(relay, owner)  # asserts `ok` comes first
    got = await envelopes(client, 3)
    assert [base64.b64decode(e.ciphertext) for e in got] == [b"one", b"two", b"three"]
    assert [e.id for e in got] == [eid_text(b"one"), eid_text(b"two"), eid_text(b"three")]
    assert all(abs(e.ts - wall_clock()) < 5 for e in got)
    await nothing_more(client)


async def test_publish_after_subscribe_goes_live_and_stays_until_acked(
    start: StartRelay,
) -> None:
    # tests.rs: publish_fans_out_live_and_still_queues
    relay = await start()
    owner = SigningKey.generate()
    client = await reader(relay, owner)
    depositor = await AppClient.connect(relay.url)
    assert isinstance(await publish(depositor, owner.public_key, b"live"), app.Published)
    (live,) = await envelopes(client, 1)
    assert live.ciphertext == b64(b"live")
    await client.close()
    again = await reader(relay, owner)
    assert (await envelopes(again, 1))[0] == live  # retained until acked


async def test_every_subscriber_of_a_mailbox_gets_live_envelopes(start: StartRelay) -> None:
    # The app's relay keeps a list of subscribers per mailbox (tests.rs:
    # remove_subscriber_removes_by_conn_id registers two); unlike /v1, none replaces another.
    relay = await start()
    owner = SigningKey.generate()
    first, second = await reader(relay, owner), await reader(relay, owner)
    assert await metric(relay, "pigeon_relay_app_readers") == 2
    depositor = await AppClient.connect(relay.url)
    await depositor.publish(owner.public_key, b"both")
    for client in (first, second):
        assert (await envelopes(client, 1))[0].ciphertext == b64(b"both")
    await second.close()
    for _ in range(100):
        if await metric(relay, "pigeon_relay_app_readers") == 1:
            break
        await asyncio.sleep(0.02)
    assert await metric(relay, "pigeon_relay_app_readers") == 1  # a_disconnected_subscriber…


async def test_ack_deletes_only_the_named_envelope_and_says_nothing(start: StartRelay) -> None:
    # tests.rs: ack_deletes_only_the_named_envelope (an unknown id is a no-op)
    relay = await start()
    owner = SigningKey.generate()
    depositor = await AppClient.connect(relay.url)
    await publish(depositor, owner.public_key, b"one")
    await publish(depositor, owner.public_key, b"two")
    client = await reader(relay, owner)
    first, _ = await envelopes(client, 2)
    await client.send(type="ack", id=first.id)
    await client.send(type="ack", id="deadbeef")
    await client.send(type="ack", id="0" * 32)
    await nothing_more(client)  # the app's relay answers an ack with nothing
    await client.close()
    (left,) = await envelopes(await reader(relay, owner), 1)
    assert base64.b64decode(left.ciphertext) == b"two"
    assert await metric(relay, "pigeon_relay_app_envelopes_deleted_total") == 1


async def test_an_ack_still_in_the_store_when_the_app_hangs_up_is_carried_out(
    start: StartRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An app that acks and closes at once: the deletion was cancelled mid-commit (done in the
    # store or not, never counted) and its reply slot raised InvalidStateError.
    relay = await start()
    owner = SigningKey.generate()
    depositor = await AppClient.connect(relay.url)
    await publish(depositor, owner.public_key, b"one")
    client = await reader(relay, owner)
    (first,) = await envelopes(client, 1)
    store = relay.relay.store
    deleting, delete = asyncio.Event(), store.delete

    async def slow_delete(mailbox_key: bytes, ids: tuple[bytes, ...]) -> int:
        deleting.set()
        await asyncio.sleep(0.3)  # the app has hung up by now
        return await delete(mailbox_key, ids)

    monkeypatch.setattr(store, "delete", slow_delete)
    await client.send(type="ack", id=first.id)
    await asyncio.wait_for(deleting.wait(), 10)
    await client.close()
    for _ in range(100):
        if await metric(relay, "pigeon_relay_app_envelopes_deleted_total") == 1:
            break
        await asyncio.sleep(0.05)
    assert await metric(relay, "pigeon_relay_app_envelopes_deleted_total") == 1
    again = await reader(relay, owner)
    await nothing_more(again)
    await again.close()


async def test_ack_before_auth_is_not_authenticated(start: StartRelay) -> None:
    relay = await start()
    client = await AppClient.connect(relay.url)
    await client.send(type="ack", id=eid_text(b"x"))
    assert await client.receive_text() == '{"type":"error","message":"not authenticated"}'
    await client.close()


async def test_a_reader_that_does_not_read_loses_nothing(start: StartRelay) -> None:
    # tests.rs: a_backed_up_subscriber_is_kept_but_never_buffered_past_the_bound; ours pages
    # what overflowed the live queue from the store instead of waiting for a reconnect.
    relay = await start()
    owner = SigningKey.generate()
    client = await reader(relay, owner)
    depositor = await AppClient.connect(relay.url)
    sent = [b"burst %d" % n + bytes(2000) for n in range(300)]
    for ciphertext in sent:
        await depositor.publish(owner.public_key, ciphertext)
    for _ in sent:
        assert isinstance(await depositor.receive(), app.Published)
    got = await envelopes(client, len(sent))
    assert [base64.b64decode(e.ciphertext) for e in got] == sent
    await nothing_more(client)


# --- tests.rs: ownership -----------------------------------------------------------------


async def test_auth_accepts_the_owner_and_refuses_forgeries(start: StartRelay) -> None:
    # tests.rs: verify_ownership_accepts_valid_and_rejects_forgery
    relay = await start()
    owner, other = SigningKey.generate(), SigningKey.generate()
    client = await AppClient.connect(relay.url)
    failed = '{"type":"error","message":"authentication failed"}'

    async def attempt(sign: SigningKey, tamper: bool = False, text: str | None = None) -> str:
        await client.send(type="subscribe", mailbox=owner.public_key.hex())
        nonce = base64.b64decode(json.loads(await client.receive_text())["nonce"])
        assert len(nonce) == 32
        signed = bytes(32) if tamper else nonce
        await client.send(type="auth", signature=text or b64(sign.sign(signed)))
        return await client.receive_text()

    assert await attempt(owner, tamper=True) == failed  # wrong nonce
    assert await attempt(other) == failed  # wrong key
    assert await attempt(owner, text="not base64!!") == failed  # malformed signature
    assert await attempt(owner, text=b64(bytes(63))) == failed  # wrong length
    assert await attempt(owner) == '{"type":"ok","detail":"authenticated"}'  # still open
    assert await metric(relay, "pigeon_relay_app_auth_failures_total") == 4
    await client.close()


async def test_auth_needs_a_fresh_challenge_each_time(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    client = await AppClient.connect(relay.url)
    await client.send(type="auth", signature=b64(bytes(64)))
    assert await client.receive_text() == '{"type":"error","message":"subscribe first"}'
    await client.send(type="subscribe", mailbox=owner.public_key.hex())
    nonce = base64.b64decode(json.loads(await client.receive_text())["nonce"])
    answer = b64(owner.sign(nonce))
    await client.send(type="auth", signature=answer)
    assert await client.receive() == app.OkDetail("authenticated")
    await client.send(type="auth", signature=answer)  # the same answer again: consumed
    assert await client.receive_text() == '{"type":"error","message":"subscribe first"}'
    await client.close()
    replayer = await AppClient.connect(relay.url)  # and on another connection: a new nonce
    await replayer.send(type="subscribe", mailbox=owner.public_key.hex())
    await replayer.receive()
    await replayer.send(type="auth", signature=answer)
    assert await replayer.receive() == app.AppError("authentication failed")
    await replayer.close()


async def test_a_challenge_expires_after_challenge_ttl_s(
    start: StartRelay, wall_clock: WallClock
) -> None:
    relay = await start()
    owner = SigningKey.generate()
    client = await AppClient.connect(relay.url)
    await client.send(type="subscribe", mailbox=owner.public_key.hex())
    nonce = base64.b64decode(json.loads(await client.receive_text())["nonce"])
    wall_clock.advance(61)
    await client.send(type="auth", signature=b64(owner.sign(nonce)))
    assert await client.receive() == app.AppError("challenge expired")
    await client.close()


async def test_a_small_order_mailbox_never_authenticates(start: StartRelay) -> None:
    relay = await start()
    client = await AppClient.connect(relay.url)
    await client.send(type="subscribe", mailbox=(bytes([1]) + bytes(31)).hex())
    assert isinstance(await client.receive(), app.ChallengeNonce)
    # R = identity, S = 0: "valid" under a small-order key for lax verifiers; strict refuses it.
    await client.send(type="auth", signature=b64(bytes([1]) + bytes(63)))
    assert await client.receive() == app.AppError("authentication failed")
    await client.close()


async def test_switching_mailbox_drops_the_previous_subscription(start: StartRelay) -> None:
    # tests.rs: switching_mailbox_drops_the_previous_subscription and
    # re_authenticating_the_same_mailbox_keeps_one_subscription
    relay = await start()
    first, second = SigningKey.generate(), SigningKey.generate()
    depositor = await AppClient.connect(relay.url)
    await publish(depositor, first.public_key, b"for first")
    client = await reader(relay, first)
    assert len(await envelopes(client, 1)) == 1
    _, answer = await client.subscribe_and_auth(first)
    assert answer == '{"type":"ok","detail":"authenticated"}'
    assert len(await envelopes(client, 1)) == 1  # a re-auth re-sends the backlog
    assert await metric(relay, "pigeon_relay_app_readers") == 1
    await client.subscribe_and_auth(second)
    assert await metric(relay, "pigeon_relay_app_readers") == 1
    await publish(depositor, first.public_key, b"first again")
    await publish(depositor, second.public_key, b"for second")
    (got,) = await envelopes(client, 1)
    assert base64.b64decode(got.ciphertext) == b"for second"
    await nothing_more(client)


# --- tests.rs: push ----------------------------------------------------------------------


async def test_push_registration_is_answered_as_a_relay_without_gateway(
    start: StartRelay,
) -> None:
    # tests.rs: register_push_requires_authentication, register_push_rejected_when_no_gateway
    relay = await start()
    client = await AppClient.connect(relay.url)
    for kind in ("register_push", "unregister_push"):
        await client.send(type=kind, token="aabbccdd")
        assert await client.receive_text() == '{"type":"error","message":"not authenticated"}'
    await client.subscribe_and_auth(SigningKey.generate())
    await client.send(type="register_push", token="aabbccdd")
    assert await client.receive_text() == '{"type":"error","message":"push not supported"}'
    await client.send(type="unregister_push", token="aabbccdd")
    assert await client.receive_text() == '{"type":"ok","detail":"push unregistered"}'
    await client.close()


# --- limits ------------------------------------------------------------------------------


async def test_an_app_mailbox_holds_at_most_1000_even_when_ours_hold_more(
    start: StartRelay,
) -> None:
    # The app's relay drops its oldest past 1,000 (tests.rs: max_queue_drops_oldest); ours
    # refuses the newest instead, because the oldest were already answered `published`.
    relay = await start(
        mailbox_max_envelopes=5000,
        connection_frame_burst=5000,
        ip_deposit_burst=5000,
    )
    owner = SigningKey.generate().public_key
    client = await AppClient.connect(relay.url)
    for n in range(1000):
        await client.publish(owner, b"%d" % n)
    for _ in range(1000):
        assert isinstance(await client.receive(), app.Published)
    assert await publish(client, owner, b"one too many") == app.AppError("mailbox full")
    assert isinstance(await publish(client, owner, b"0"), app.Published)  # a duplicate
    v1 = await RawClient.connect(relay.url)  # our protocol keeps its own, larger quota
    for n in range(1001):
        assert isinstance(await v1.deposit(owner, b"%d" % n), Stored)
    await client.close()
    await v1.close()


async def test_the_relay_byte_cap_refuses_with_relay_at_capacity(start: StartRelay) -> None:
    # tests.rs: the_global_byte_ceiling_evicts_from_the_largest_mailbox; ours refuses new
    # deposits instead of evicting stored ones, so the quiet mailbox keeps its mail too.
    relay = await start(relay_max_bytes=40)
    quiet, flood = SigningKey.generate(), SigningKey.generate()
    client = await AppClient.connect(relay.url)
    assert isinstance(await publish(client, quiet.public_key, b"1234"), app.Published)
    answers = [await publish(client, flood.public_key, b"flood%03d" % n) for n in range(20)]
    assert app.AppError("relay at capacity") in answers
    assert await metric(relay, "pigeon_relay_stored_bytes") <= 40
    assert len(await envelopes(await reader(relay, quiet), 1)) == 1


async def test_frames_are_rate_limited_per_connection(start: StartRelay) -> None:
    relay = await start(connection_frame_burst=3, connection_frames_per_s=0.001)
    client = await AppClient.connect(relay.url)
    for _ in range(3):
        await client.send(type="ack", id="x")
        assert await client.receive() == app.AppError("not authenticated")
    await client.send(type="ack", id="x")
    assert await client.receive() == app.AppError("rate limited")
    await client.close()


async def test_a_connection_gets_few_challenges(start: StartRelay) -> None:
    # Each challenge lets a client make the relay check a signature; the app needs one.
    relay = await start()
    client = await AppClient.connect(relay.url)
    mailbox = SigningKey.generate().public_key.hex()
    for _ in range(8):
        await client.send(type="subscribe", mailbox=mailbox)
        assert isinstance(await client.receive(), app.ChallengeNonce)
    await client.send(type="subscribe", mailbox=mailbox)
    assert await client.receive() == app.AppError("rate limited")
    await client.close()


async def test_deposits_share_the_address_rate_limit_with_v1(start: StartRelay) -> None:
    relay = await start(ip_deposit_burst=2, ip_deposits_per_s=0.001)
    owner = SigningKey.generate().public_key
    v1 = await RawClient.connect(relay.url)
    assert isinstance(await v1.deposit(owner, b"a"), Stored)
    client = await AppClient.connect(relay.url)
    assert isinstance(await publish(client, owner, b"b"), app.Published)
    assert await publish(client, owner, b"c") == app.AppError("rate limited")
    await client.close()
    await v1.close()


async def test_a_frame_above_the_limit_closes_with_1009(start: StartRelay) -> None:
    relay = await start(max_envelope_bytes=1000)
    client = await AppClient.connect(relay.url)
    limit = app.max_frame_bytes(1000)
    await client.ws.send_str("x" * limit)  # read, and answered
    assert await client.receive() == app.AppError("malformed message")
    await client.ws.send_str("x" * (limit + 1))
    message = await client.ws.receive(timeout=5)
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert message.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await client.session.close()


async def test_malformed_frames_are_answered_and_the_connection_stays(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    client = await AppClient.connect(relay.url)
    key = owner.public_key.hex()
    malformed = '{"type":"error","message":"malformed message"}'
    for text in (
        "not json",
        "[]",
        '"publish"',
        '{"type":"nope"}',
        '{"type":"publish","recipient":"' + key + '"}',
        '{"type":"subscribe","mailbox":7}',
        '{"type":"subscribe","mailbox":null}',
        '{"type":"subscribe","mailbox":"' + key + '","mailbox":"' + key + '"}',
        '{"type":"ack","id":"\\ud800"}',
        '{"type":"ack","id":"x","n":NaN}',
        "[" * 100_000,
    ):
        await client.ws.send_str(text)
        assert await client.receive_text() == malformed, text
    await client.ws.send_bytes(b'{"type":"subscribe"}')  # binary frames are ignored
    await client.send(type="subscribe", mailbox=key, extra="ignored, as serde does")
    assert isinstance(await client.receive(), app.ChallengeNonce)
    await client.close()


async def test_replies_come_in_request_order(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    client = await AppClient.connect(relay.url)
    await client.publish(owner.public_key, b"first")
    await client.send(type="subscribe", mailbox="bad")
    await client.publish(owner.public_key, b"")
    await client.send(type="subscribe", mailbox=owner.public_key.hex())
    kinds = [type(await client.receive()) for _ in range(4)]
    assert kinds == [app.Published, app.AppError, app.AppError, app.ChallengeNonce]
    await client.close()


# --- our store ---------------------------------------------------------------------------


async def test_app_and_v1_mailboxes_of_one_key_are_apart(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    v1 = await RawClient.connect(relay.url)
    assert isinstance(await v1.deposit(owner.public_key, b"for v1"), Stored)
    client = await AppClient.connect(relay.url)
    assert isinstance(await publish(client, owner.public_key, b"for the app"), app.Published)
    app_reader = await reader(relay, owner)
    (got,) = await envelopes(app_reader, 1)
    assert base64.b64decode(got.ciphertext) == b"for the app"
    await nothing_more(app_reader)
    v1_reader = await RawClient.connect(relay.url)
    await v1_reader.auth(owner)
    assert await v1_reader.receive() == Envelope(hashlib.sha256(b"for v1").digest()[:16], b"for v1")
    assert await metric(relay, "pigeon_relay_mailboxes") == 2


async def test_a_clean_restart_keeps_what_was_published(start: StartRelay, tmp_path: Path) -> None:
    data = tmp_path / "restart"
    relay = await start(data_dir=data)
    owner = SigningKey.generate()
    client = await AppClient.connect(relay.url)
    assert isinstance(await publish(client, owner.public_key, b"kept"), app.Published)
    await client.close()
    await relay.aclose()
    again = await start(data_dir=data)
    (got,) = await envelopes(await reader(again, owner), 1)
    assert base64.b64decode(got.ciphertext) == b"kept"


async def test_app_envelopes_expire_after_30_days_even_if_ours_live_longer(
    start: StartRelay, wall_clock: WallClock
) -> None:
    relay = await start(max_age_s=60 * DAY_S)
    owner = SigningKey.generate()
    client = await AppClient.connect(relay.url)
    assert isinstance(await publish(client, owner.public_key, b"old"), app.Published)
    v1 = await RawClient.connect(relay.url)
    assert isinstance(await v1.deposit(owner.public_key, b"ours"), Stored)
    wall_clock.advance(30 * DAY_S + 1)
    await nothing_more(await reader(relay, owner))  # never served, even before the purge
    assert await relay.relay.purge_expired() == 1
    assert await metric(relay, "pigeon_relay_stored_envelopes") == 1  # /v1's stays


async def test_app_envelopes_expire_with_our_shorter_max_age(
    start: StartRelay, wall_clock: WallClock
) -> None:
    # tests.rs: expire_drops_old_envelopes_and_reclaims_empty_mailboxes
    relay = await start(max_age_s=DAY_S)
    owner = SigningKey.generate()
    client = await AppClient.connect(relay.url)
    assert isinstance(await publish(client, owner.public_key, b"old"), app.Published)
    wall_clock.advance(DAY_S + 1)
    assert await relay.relay.purge_expired() == 1
    assert await metric(relay, "pigeon_relay_mailboxes") == 0


async def test_the_endpoint_can_be_switched_off(start: StartRelay) -> None:
    relay = await start(app_endpoint=False)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(app_url(relay.url))
    assert refused.value.status == 404


async def test_metrics_count_app_traffic(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    client = await AppClient.connect(relay.url)
    await publish(client, owner.public_key, b"a")
    await publish(client, owner.public_key, b"a")
    await client.send(type="subscribe", mailbox="bad")
    await client.receive()
    assert await metric(relay, 'pigeon_relay_app_publishes_total{result="new"}') == 1
    assert await metric(relay, 'pigeon_relay_app_publishes_total{result="duplicate"}') == 1
    assert await metric(relay, 'pigeon_relay_app_errors_total{message="invalid mailbox"}') == 1
    assert await metric(relay, "pigeon_relay_app_connections_total") == 1
    await client.close()


async def test_a_shutdown_tells_app_clients_and_closes_with_1001(start: StartRelay) -> None:
    relay = await start()
    client = await AppClient.connect(relay.url)
    await client.send(type="subscribe", mailbox="bad")
    assert await client.receive() == app.AppError("invalid mailbox")
    closing = asyncio.create_task(relay.aclose())
    assert await client.receive() == app.AppError("shutting down")
    message = await client.ws.receive(timeout=5)
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert message.data == aiohttp.WSCloseCode.GOING_AWAY
    await closing
    await client.session.close()


async def test_a_refused_app_connection_is_told_in_json(start: StartRelay) -> None:
    relay = await start(max_connections_per_ip=1)
    first = await AppClient.connect(relay.url)
    second = await AppClient.connect(relay.url)
    assert await second.receive() == app.AppError("too many connections")
    message = await second.ws.receive(timeout=5)
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert message.data == aiohttp.WSCloseCode.TRY_AGAIN_LATER
    await second.session.close()
    await first.close()
