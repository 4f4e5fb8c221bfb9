"""The delivery queue and dispatcher on real PostgreSQL and a real HTTP endpoint, fed with
events queued the way the stream followers queue them: conversation order kept by lanes even
with two dispatchers (replicas) and failing attempts, an attempt cut short made again after its
lease, and a stream source, of a conversation or of a user, that queues an event once and only
while it holds the source."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import socket
import time
import uuid
from pathlib import Path

import pytest
from chat4all.messaging.v1 import message_pb2 as messaging_pb

from services.runtime import postgres
from services.runtime.config import load_settings
from services.webhooks import delivery_queue, sender, sources
from services.webhooks.dispatcher import Dispatcher
from services.webhooks.servicer import MIGRATIONS
from services.webhooks.settings import WebhookSettings
from services.webhooks.sources import SourceLost
from services.webhooks.store import NewWebhook, WebhookStore
from tests.services.servers import query
from tests.support.webhook_receiver import WebhookReceiver, always

FEEDER = "test-feeder"


@pytest.fixture
async def pool(postgres_dsn):
    pool = await postgres.open_pool(postgres_dsn, 1, 20)
    await postgres.migrate(pool, "webhooks", Path(MIGRATIONS))
    yield pool
    await pool.close()


@pytest.fixture
async def receiver():
    receiver = WebhookReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


def settings(**overrides) -> WebhookSettings:
    values = dict(
        delivery_timeout_seconds=2.0,
        delivery_max_attempts=50,
        delivery_backoff_base_seconds=0.01,
        delivery_backoff_max_seconds=0.05,
        delivery_poll_seconds=0.05,
        delivery_concurrency=4,
        deliver_to_private_networks=True,
    )
    return load_settings(WebhookSettings, environ={}, **{**values, **overrides})


async def webhook(pool, url: str, conversations: list[uuid.UUID]) -> uuid.UUID:
    created, _ = await WebhookStore(pool).create_webhook(
        "test", uuid.uuid4(), b"digest", NewWebhook(url, "", conversations, []), {c: "start" for c in conversations}, "whsec_x"
    )
    return uuid.UUID(created.webhook_id)


async def user_webhook(pool, url: str, user_id: uuid.UUID) -> uuid.UUID:
    created, _ = await WebhookStore(pool).create_webhook(
        "test", uuid.uuid4(), b"digest", NewWebhook(url, "", [], [], user_id), {user_id: "start"}, "whsec_x"
    )
    assert created.filter.WhichOneof("scope") == "user_id" and created.filter.user_id == str(user_id)
    return uuid.UUID(created.webhook_id)


def event(conversation_id: uuid.UUID, n: int) -> messaging_pb.ConversationEvent:
    return messaging_pb.ConversationEvent(
        cursor=f"{conversation_id}-{n}",
        conversation_id=str(conversation_id),
        message_created=messaging_pb.Message(content=messaging_pb.MessageContent(text=f"{conversation_id}:{n}")),
    )


def text(received) -> tuple[str, int]:
    conversation, n = json.loads(received.body)["event"]["messageCreated"]["content"]["text"].split(":")
    return conversation, int(n)


async def running(pool, *configs: WebhookSettings):
    dispatchers = []
    for config in configs:
        session = sender.open_session(config.delivery_concurrency, True)
        dispatcher = Dispatcher(pool, session, config)
        await dispatcher.start()
        dispatchers.append((dispatcher, session))
    return dispatchers


async def stopped(dispatchers) -> None:
    for dispatcher, session in dispatchers:
        await dispatcher.stop()
        await session.close()


async def all_finished(pool, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        async with pool.connection() as conn:
            done = (await (await conn.execute("SELECT count(*) FROM webhook_deliveries WHERE state <> 1")).fetchone())[0]
        if done == count:
            return
        assert time.monotonic() < deadline, f"{done} of {count} deliveries finished"
        await asyncio.sleep(0.05)


async def test_two_dispatchers_keep_conversation_order_through_failures(pool, receiver):
    conversations = [uuid.uuid4() for _ in range(3)]
    webhook_id = await webhook(pool, receiver.url("flaky"), conversations)
    rng = random.Random(42)
    receiver.answer("flaky", lambda n: 500 if rng.random() < 0.3 else 200)
    [source_a, source_b, source_c] = sorted(await sources.hold(pool, FEEDER, 30), key=lambda s: conversations.index(s.conversation_id))
    per_conversation = 15
    for n in range(per_conversation):
        for source in (source_a, source_b, source_c):
            assert await sources.queue_event(pool, FEEDER, source, event(source.conversation_id, n))

    dispatchers = await running(pool, settings(), settings())
    try:
        await all_finished(pool, 3 * per_conversation)
    finally:
        await stopped(dispatchers)

    rows = await query(pool.conninfo, "SELECT state, count(*) FROM webhook_deliveries GROUP BY state")
    assert rows == [(delivery_queue.DELIVERED, 3 * per_conversation)]
    assert any(not r.accepted for r in receiver.requests), "the endpoint never failed: the test proves little"
    for conversation in conversations:
        seen = [text(r)[1] for r in receiver.to("flaky") if text(r)[0] == str(conversation)]
        accepted = [text(r)[1] for r in receiver.accepted("flaky") if text(r)[0] == str(conversation)]
        assert accepted == list(range(per_conversation)), conversation  # each once, in order
        # Never an attempt at an event before the previous one was accepted.
        assert seen == sorted(seen), conversation
    assert {r.headers["X-Chat4All-Webhook-Id"] for r in receiver.requests} == {str(webhook_id)}


async def test_an_attempt_cut_short_is_made_again_after_its_lease(pool, receiver):
    conversation = uuid.uuid4()
    await webhook(pool, receiver.url("ok"), [conversation])
    [source] = await sources.hold(pool, FEEDER, 30)
    await sources.queue_event(pool, FEEDER, source, event(conversation, 0))

    # A dispatcher claims it and dies before posting: its lease runs out, nothing is recorded.
    [claimed] = await delivery_queue.claim_due(pool, 10, lease_seconds=0.3, max_attempts=5)
    assert claimed.number == 1
    assert await delivery_queue.claim_due(pool, 10, lease_seconds=0.3, max_attempts=5) == []  # leased

    dispatchers = await running(pool, settings())
    try:
        await all_finished(pool, 1, timeout=10)
    finally:
        await stopped(dispatchers)
    assert [r.headers["X-Chat4All-Delivery-Attempt"] for r in receiver.accepted("ok")] == ["2"]
    attempts = await query(
        pool.conninfo, "SELECT attempt_number, duration_seconds IS NULL, http_status FROM webhook_delivery_attempts ORDER BY 1"
    )
    assert attempts == [(1, True, 0), (2, False, 200)]
    # The lease of the dead claim no longer counts: recording it now changes nothing.
    outcome = delivery_queue.Outcome(500, "late", 0.1)
    assert not await delivery_queue.record(pool, claimed, outcome, delivery_queue.PENDING, 1.0)


async def test_a_source_queues_an_event_once_and_only_while_held(pool, receiver):
    conversation = uuid.uuid4()
    webhook_id = await webhook(pool, receiver.url("ok"), [conversation])
    [source] = await sources.hold(pool, FEEDER, 30)
    assert await sources.queue_event(pool, FEEDER, source, event(conversation, 0))
    assert not await sources.queue_event(pool, FEEDER, source, event(conversation, 0))  # read twice: queued once
    assert await query(pool.conninfo, "SELECT cursor FROM webhook_sources") == [(f"{conversation}-0",)]

    # Another replica cannot take a held source; once the lease lapses it can, and the
    # former holder can no longer move the cursor.
    assert await sources.hold(pool, "other-replica", 30) == []
    async with pool.connection() as conn:
        await conn.execute("UPDATE webhook_sources SET lease_until = now() - interval '1 second'")
    [taken] = await sources.hold(pool, "other-replica", 30)
    assert taken.cursor == f"{conversation}-0"
    with pytest.raises(SourceLost):
        await sources.queue_event(pool, FEEDER, source, event(conversation, 1))
    assert await query(pool.conninfo, "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = %s", (webhook_id,)) == [(1,)]


async def test_one_post_follows_no_redirect_and_reaches_no_private_address_unless_allowed(receiver):
    def attempt(url: str) -> delivery_queue.Attempt:
        return delivery_queue.Attempt(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), 1, url, "whsec_x", b"{}", 1, uuid.uuid4())

    receiver.answer("moved", always(302))
    async with sender.open_session(2, private_allowed=True) as session:
        accepted = await sender.post(session, attempt(receiver.url("fine")), 2.0, private_allowed=True)
        moved = await sender.post(session, attempt(receiver.url("moved")), 2.0, private_allowed=True)
    assert accepted.accepted and accepted.error == ""
    assert not moved.accepted and moved.http_status == 302 and "302" in moved.error
    assert len(receiver.requests) == 2

    async with sender.open_session(2, private_allowed=False) as session:
        urls = [receiver.url("fine"), f"http://localhost:{receiver.port}/fine"]
        if host_name_on_loopback():  # a name only the resolver can judge
            urls.append(f"http://{socket.gethostname()}:{receiver.port}/fine")
        for url in urls:
            refused = await sender.post(session, attempt(url), 2.0, private_allowed=False)
            assert refused.http_status == 0 and refused.error.startswith("address not allowed"), url
    assert len(receiver.requests) == 2  # nothing reached the endpoint


def host_name_on_loopback() -> bool:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


async def test_a_user_source_queues_each_event_once_in_its_own_conversations_lane(pool, receiver):
    user, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    webhook_id = await user_webhook(pool, receiver.url("user"), user)
    [source] = await sources.hold(pool, FEEDER, 30)
    assert isinstance(source, sources.UserSource) and (source.user_id, source.cursor) == (user, "start")

    # One user stream interleaves the conversations; every event carries a cursor of that stream.
    stream = [event(first, 0), event(second, 0), event(first, 1), event(second, 1), event(first, 2)]
    for n, item in enumerate(stream):
        item.cursor = f"user-stream-{n}"
        assert await sources.queue_event(pool, FEEDER, source, item)
    assert await query(pool.conninfo, "SELECT cursor FROM webhook_user_sources") == [("user-stream-4",)]
    assert not await sources.queue_event(pool, FEEDER, source, stream[-1])  # read twice: queued once
    lanes = await query(pool.conninfo, "SELECT conversation_id, count(*) FROM webhook_deliveries GROUP BY 1")
    assert dict(lanes) == {first: 3, second: 2}

    # Each conversation keeps its order through failures, with two dispatchers.
    rng = random.Random(7)
    receiver.answer("user", lambda n: 500 if rng.random() < 0.3 else 200)
    dispatchers = await running(pool, settings(), settings())
    try:
        await all_finished(pool, len(stream))
    finally:
        await stopped(dispatchers)
    for conversation, count in ((first, 3), (second, 2)):
        seen = [text(r)[1] for r in receiver.to("user") if text(r)[0] == str(conversation)]
        accepted = [text(r)[1] for r in receiver.accepted("user") if text(r)[0] == str(conversation)]
        assert accepted == list(range(count)) and seen == sorted(seen), conversation
    assert {r.headers["X-Chat4All-Webhook-Id"] for r in receiver.requests} == {str(webhook_id)}

    # Leased like a conversation source: taken over only once the lease lapses, and then the
    # former holder can no longer move the cursor.
    assert await sources.hold(pool, "other-replica", 30) == []
    async with pool.connection() as conn:
        await conn.execute("UPDATE webhook_user_sources SET lease_until = now() - interval '1 second'")
    [taken] = await sources.hold(pool, "other-replica", 30)
    assert taken.key == source.key and taken.cursor == "user-stream-4"
    with pytest.raises(SourceLost):
        await sources.queue_event(pool, FEEDER, source, event(first, 3))
    await sources.release(pool, "other-replica")
    assert await query(pool.conninfo, "SELECT lease_owner FROM webhook_user_sources") == [(None,)]
