"""The whole send path on the real local platform (platformctl on free ports): API ->
Kafka (tansu on SeaweedFS) -> router -> Telegram connector -> Telegram emulator, and
back in through the connector's webhook. Processes are killed with SIGKILL and
restarted by `platformctl up`, as an operator's supervisor would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from typing import Any

import aiohttp
import grpc
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.conversations.v1 import request_response_pb2 as conversation_requests
from chat4all.conversations.v1 import service_pb2_grpc as conversation_grpc
from chat4all.events.v1 import event_pb2
from chat4all.messaging.v1 import message_pb2
from chat4all.messaging.v1 import request_response_pb2 as messaging_requests
from chat4all.messaging.v1 import service_pb2_grpc as messaging_grpc
from chat4all.users.v1 import service_pb2_grpc as user_grpc

from services.messaging import topics
from services.runtime import kafka
from tests.support.platform import Platform, running_platform
from tests.support.scenarios import emulator_sends, platform_conversations, send_until_accepted, settled

S = message_pb2.DeliveryStatus


def fast_recovery(raw: dict[str, Any], storage: str = "memory") -> None:
    # tansu on S3 reads about one stored batch per fetch: throughput tests use its memory
    # engine; the broker-kill test needs S3, where the log outlives the process.
    raw["kafka"]["storage"] = storage
    apps = raw["apps"]
    for app in apps.values():
        # Several platforms may share the machine's PostgreSQL (100 connections) at once.
        app.setdefault("env", {})["C4A_POSTGRES_POOL_MAX"] = "4"
    for app in ("messaging", "router", "telegram"):
        apps[app].setdefault("env", {}).update({
            "C4A_KAFKA_SESSION_TIMEOUT_MS": "1500",  # tansu rejoins a group after a few of these
            "C4A_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
            "C4A_SHUTDOWN_GRACE_SECONDS": "3",
        })
    apps["router"]["env"]["C4A_BACKOFF_BASE_SECONDS"] = "0.2"
    # These tests measure the path, not Telegram's per-chat limits (tested on their own).
    apps["telegram"]["env"].update({
        "C4A_TELEGRAM_PRIVATE_CHAT_PER_SECOND": "1000", "C4A_TELEGRAM_PRIVATE_CHAT_BURST": "1000",
        "C4A_TELEGRAM_BOT_PER_SECOND": "100000", "C4A_TELEGRAM_BOT_BURST": "100000",
        # A send in flight when the connector dies is retried once this lock expires (it must
        # outlast the HTTP timeout, so a slow send is never duplicated).
        "C4A_CONNECTOR_SEND_LOCK_SECONDS": "3",
        "C4A_CONNECTOR_HTTP_TIMEOUT_SECONDS": "2",
        # Retries and dead letters are measured against a platform that answers 5xx; a breaker
        # opening on three in a row would defer those messages instead (its own test covers it).
        "C4A_CONNECTOR_BREAKER_FAILURE_THRESHOLD": "1000",
    })


class Client:
    def __init__(self, platform: Platform) -> None:
        apps = platform.raw["apps"]
        self.platform = platform
        self.channels = {name: grpc.aio.insecure_channel(f"127.0.0.1:{apps[name]['grpc_port']}") for name in ("messaging", "users", "conversations")}
        self.messages = messaging_grpc.MessageServiceStub(self.channels["messaging"])
        self.users = user_grpc.UserServiceStub(self.channels["users"])
        self.conversations = conversation_grpc.ConversationServiceStub(self.channels["conversations"])
        self.emulator = f"http://127.0.0.1:{apps['telegram_emulator']['http_port']}"
        self.webhook = f"http://127.0.0.1:{apps['telegram']['webhook_port']}/telegram/webhook"
        self.bot_token = apps["telegram"]["env"]["C4A_TELEGRAM_BOT_TOKEN"]
        self.http = aiohttp.ClientSession()

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.emulator}/_emulator/{path}", json=body) as response:
            assert response.status < 300, await response.text()
            return await response.json()

    def kill(self, part: str) -> float:
        pid = self.platform.pids()[part]
        os.killpg(pid, signal.SIGKILL)
        return time.time()

    async def close(self) -> None:
        await self.http.close()
        for channel in self.channels.values():
            await channel.close()


@pytest.fixture(scope="module")
def platform():
    with running_platform(fast_recovery) as handle:
        handle.check("up", timeout=300)
        yield handle


async def open_client(platform: Platform) -> Client:
    client = Client(platform)
    await client.control("PUT", "limits", {"enabled": False})
    await client.control("DELETE", "faults")
    return client


@pytest.fixture
async def client(platform):
    client = await open_client(platform)
    yield client
    await client.close()


async def send_all(client: Client, conversations: list[dict], per_conversation: int, tag: str, pause: float = 0.0) -> None:
    async def conversation_sender(index: int, conversation: dict) -> None:
        for i in range(per_conversation):
            await send_until_accepted(client.messages, conversation, f"{tag} {index} {i}")
            if pause:
                await asyncio.sleep(pause)

    await asyncio.gather(*(conversation_sender(i, c) for i, c in enumerate(conversations)))


async def wait_for_sends(client: Client, tag: str, expected: int, timeout: float = 180) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        sends = await emulator_sends(client.http, client.emulator, tag)
        if len(sends) >= expected or time.monotonic() > deadline:
            await asyncio.sleep(1.5)  # anything still arriving would be a duplicate: let it show
            return await emulator_sends(client.http, client.emulator, tag)
        await asyncio.sleep(0.5)


def by_chat(sends: list[dict]) -> dict[int, list[tuple[str, float]]]:
    chats: dict[int, list[tuple[str, float]]] = {}
    for send in sends:
        chats.setdefault(send["chat_id"], []).append((send["message"]["text"], send["sent_at"]))
    return chats


def assert_in_order_exactly_once(sends, conversations, per_conversation, tag, in_doubt=frozenset()):
    chats = by_chat(sends)
    for index, conversation in enumerate(conversations):
        texts = [text for text, _ in chats.get(int(conversation["chat_id"]), [])]
        expected = [f"{tag} {index} {i}" for i in range(per_conversation)]
        repeated = [t for t in set(texts) if texts.count(t) > 1]
        assert not set(repeated) - in_doubt, f"chat {index} got {repeated} twice"
        first_seen = list(dict.fromkeys(texts))
        assert first_seen == expected, f"chat {index}: {len(first_seen)} of {per_conversation} arrived, or out of order"


async def test_200_conversations_x_50_messages_arrive_in_order_exactly_once(client):
    conversations = await platform_conversations(client.users, client.conversations, 200)
    tag = f"load-{uuid.uuid4().hex[:6]}"
    await send_all(client, conversations, 50, tag)
    sends = await wait_for_sends(client, tag, 200 * 50)
    assert len(sends) == 200 * 50
    assert_in_order_exactly_once(sends, conversations, 50, tag)


async def kill_mid_stream(client: Client, platform: Platform, part: str, conversations: int, each: int) -> None:
    chats = await platform_conversations(client.users, client.conversations, conversations)
    tag = f"kill-{part}-{uuid.uuid4().hex[:6]}"
    sending = asyncio.create_task(send_all(client, chats, each, tag, pause=0.05))
    await asyncio.sleep(1.0)
    killed_at = client.kill(part)
    await asyncio.sleep(0.5)
    await asyncio.to_thread(platform.check, "up", timeout=300)
    await sending
    sends = await wait_for_sends(client, tag, conversations * each)
    # A Telegram send in flight at the instant the connector dies is in doubt: Telegram offers
    # no idempotency key, so it is sent again (at-least-once) rather than risk losing it. In
    # flight means first received shortly before the kill, or just after it: a request already
    # on the wire is still answered by Telegram after the connector is gone.
    first_received: dict[str, float] = {}
    for text, at in sum(by_chat(sends).values(), []):
        first_received[text] = min(at, first_received.get(text, at))
    in_doubt = {text for text, at in first_received.items() if part == "telegram" and killed_at - 2 < at <= killed_at + 1}
    assert_in_order_exactly_once(sends, chats, each, tag, in_doubt)


@pytest.mark.parametrize("part", ["router", "telegram"])
async def test_sigkill_mid_stream_loses_nothing_duplicates_nothing_keeps_order(client, platform, part):
    await kill_mid_stream(client, platform, part, 20, 30)


async def test_flaky_platform_every_message_ends_sent_or_dead_lettered_and_replay_delivers(client):
    conversations = await platform_conversations(client.users, client.conversations, 30)
    tag = f"flaky-{uuid.uuid4().hex[:6]}"
    await client.control("PUT", "faults", {"error_rate": 0.15, "error_status": 502, "throttle_rate": 0.15, "retry_after": 1, "seed": 7})
    ids = []
    for index, conversation in enumerate(conversations):
        for i in range(10):
            ids.append(await send_until_accepted(client.messages, conversation, f"{tag} {index} {i}"))
    messages = await settled(client.messages, ids)
    # With random faults a message may or may not fail three times in a row; this one does.
    await client.control("PUT", "faults", {"fail_next": 3})
    forced = await send_until_accepted(client.messages, conversations[0], f"{tag} forced")
    messages += await settled(client.messages, [forced])
    ids.append(forced)
    await client.control("DELETE", "faults")

    deliveries = [m.deliveries[0] for m in messages]
    sent = [d for d in deliveries if d.status == S.DELIVERY_STATUS_SENT]
    dead = [d for d in deliveries if d.status == S.DELIVERY_STATUS_DEAD_LETTERED]
    assert len(sent) + len(dead) == len(ids) == 301
    assert deliveries[-1].status == S.DELIVERY_STATUS_DEAD_LETTERED
    for delivery in dead:  # three real attempts, each a 5xx
        attempts = {c.attempt for c in delivery.history if c.status == S.DELIVERY_STATUS_DISPATCHED}
        assert attempts == {1, 2, 3}
        assert delivery.history[-1].reason.startswith("gave up after 3 attempts")
    honoured = 0
    for delivery in deliveries:  # a retry-after is waited out before the next attempt
        history = list(delivery.history)
        for current, following in zip(history, history[1:]):
            if current.status == S.DELIVERY_STATUS_RETRYING and current.platform_error_code == "RESOURCE_EXHAUSTED":
                assert following.change_time.ToNanoseconds() >= current.next_attempt_time.ToNanoseconds() - 50_000_000
                if "failed: 429" in current.reason:
                    # Telegram's own 429 (retry_after 1 s); the sends behind it meet the bot's
                    # limit held for the rest of that second, and wait what is left of it.
                    assert current.next_attempt_time.ToNanoseconds() - current.change_time.ToNanoseconds() >= 900_000_000
                    honoured += 1
    assert honoured, "no 429 was met: the fault injection did not work"

    listed = await client.messages.ListDeadLetters(messaging_requests.ListDeadLettersRequest(page_size=1000))
    mine = [d for d in listed.dead_letters if d.message_id in set(ids)]
    assert len(mine) == len(dead)
    assert all(d.attempt_count == 3 and d.reason for d in mine)
    for dead_letter in mine:
        await client.messages.ReplayDeadLetter(messaging_requests.ReplayDeadLetterRequest(
            request_id=str(uuid.uuid4()), dead_letter_id=dead_letter.dead_letter_id))
    messages = await settled(client.messages, ids)
    assert all(m.deliveries[0].status == S.DELIVERY_STATUS_SENT for m in messages)
    sends = await wait_for_sends(client, tag, 301)
    texts = [s["message"]["text"] for s in sends]
    expected = [f"{tag} {index} {i}" for index in range(30) for i in range(10)] + [f"{tag} forced"]
    assert sorted(texts) == sorted(expected)


async def test_inbound_update_reaches_history_and_stream_once_and_forged_webhooks_are_refused(client):
    chat_id = int(time.time() * 1000) % 10**9
    update = {"chat": {"id": chat_id, "type": "private"}, "from": {"id": chat_id, "first_name": "Rita"}, "text": "oi"}
    injected = await client.control("POST", f"bots/{client.bot_token}/updates", {**update, "duplicate": 1})
    assert injected["update_id"]
    binding = conversation_pb2.PlatformBinding(
        channel=channel_pb2.Channel.CHANNEL_TELEGRAM, account_id=client.bot_token.split(":")[0], external_group_id=str(chat_id)
    )
    async with asyncio.timeout(30):
        while not (found := await client.conversations.ListConversations(
            conversation_requests.ListConversationsRequest(platform_binding=binding))).conversations:
            await asyncio.sleep(0.2)
    conversation_id = found.conversations[0].conversation_id
    history = await client.messages.ListMessages(messaging_requests.ListMessagesRequest(conversation_id=conversation_id))
    cursor = history.events_cursor

    stream = client.messages.StreamConversationEvents(
        messaging_requests.StreamConversationEventsRequest(conversation_id=conversation_id, after_cursor=cursor))
    await client.control("POST", f"bots/{client.bot_token}/updates", {**update, "text": "tudo bem?"})
    async with asyncio.timeout(30):
        async for response in stream:
            if response.event.HasField("message_created"):
                assert response.event.message_created.content.text == "tudo bem?"
                break
    stream.cancel()

    forged = {"update_id": 10**9, "message": {"message_id": 1, "date": 0, "text": "forged",
              "chat": {"id": chat_id, "type": "private"}, "from": {"id": chat_id, "is_bot": False, "first_name": "X"}}}
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
        async with client.http.post(client.webhook, data=json.dumps(forged), headers={"Content-Type": "application/json", **headers}) as response:
            assert response.status == 401
    await asyncio.sleep(2)
    listed = await client.messages.ListMessages(messaging_requests.ListMessagesRequest(conversation_id=conversation_id))
    assert [m.content.text for m in listed.messages] == ["tudo bem?", "oi"]  # the duplicate and the forgeries stored nothing


async def test_one_trace_covers_api_router_and_connector(client, platform):
    [conversation] = await platform_conversations(client.users, client.conversations, 1)
    trace_id = uuid.uuid4().hex
    request = messaging_requests.SendMessageRequest(
        request_id=str(uuid.uuid4()), conversation_id=conversation["conversation_id"],
        sender_user_id=conversation["sender_user_id"], content=message_pb2.MessageContent(text=f"traced {trace_id}"),
    )
    await client.messages.SendMessage(request, metadata=(("traceparent", f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"),))
    await wait_for_sends(client, f"traced {trace_id}", 1)

    def traced(log_name: str, method: str) -> list[dict]:
        lines = (platform.var / "log" / f"{log_name}.log").read_text().splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [e for e in entries if e.get("trace_id") == trace_id and e.get("grpc_method") == method]

    # The API call, and -- through the Kafka record's headers and the router -- the connector's call.
    assert traced("messaging", "SendMessage")
    assert traced("telegram", "SendMessage")


async def test_a_throttled_conversation_holds_back_only_itself(client):
    slow, fast = await platform_conversations(client.users, client.conversations, 2)
    tag = f"hol-{uuid.uuid4().hex[:6]}"
    # Telegram's own per-chat limit (the emulator's: 1/s, bursts of 3) answers 429 with a
    # retry_after: the slow chat's lane waits it out, in order, while the other chat goes on.
    await client.control("PUT", "limits", {"enabled": True})
    try:
        for i in range(8):
            await send_until_accepted(client.messages, slow, f"{tag} slow {i}")
        await send_until_accepted(client.messages, fast, f"{tag} fast")
        sends = await wait_for_sends(client, tag, 9, timeout=60)
    finally:
        await client.control("PUT", "limits", {"enabled": False})
    texts = [s["message"]["text"] for s in sends]
    assert [t for t in texts if "slow" in t] == [f"{tag} slow {i}" for i in range(8)]
    assert texts.index(f"{tag} fast") < texts.index(f"{tag} slow 7")


async def test_a_permanent_refusal_is_dead_lettered_at_once_without_retries(client):
    [conversation] = await platform_conversations(client.users, client.conversations, 1)
    await client.control("POST", f"bots/{client.bot_token}/chats", {"id": int(conversation["chat_id"]), "blocked": True})
    message_id = await send_until_accepted(client.messages, conversation, "to a user who blocked the bot")
    [message] = await settled(client.messages, [message_id])
    delivery = message.deliveries[0]
    assert delivery.status == S.DELIVERY_STATUS_DEAD_LETTERED
    assert [c.attempt for c in delivery.history if c.status == S.DELIVERY_STATUS_DISPATCHED] == [1]
    assert "blocked" in delivery.history[-1].reason

    # The dead-letter topic holds the record, with the reason and the attempts.
    consumer = AIOKafkaConsumer(bootstrap_servers=client.platform.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topics.DEAD_LETTERS, p) for p in consumer.partitions_for_topic(topics.DEAD_LETTERS) or range(8)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found = None
        async with asyncio.timeout(20):
            while found is None:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        event = kafka.decode(record, event_pb2.Event)
                        if event.dead_lettered.dead_letter.message_id == message_id:
                            found, key = event.dead_lettered.dead_letter, record.key
    finally:
        await consumer.stop()
    assert found.attempt_count == 1 and "blocked" in found.reason
    assert key.decode() == conversation["conversation_id"]
