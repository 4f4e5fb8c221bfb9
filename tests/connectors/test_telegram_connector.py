"""The Telegram connector against real parts: the Telegram Bot API emulator as a
process, the machine's Redis, a tansu broker, and the connector's gRPC server
in-process through the runtime. Files are served, as presigned S3 URLs would be,
by a small HTTP server of the module's own.

Every test uses a bot token of its own, so its emulator state (chats, flood
buckets, update queue, webhook) and its Redis keys are its own; the inbound
records of a test are the ones keyed by its bot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import secrets
import string
import struct
import time
import tracemalloc
import uuid
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from aiokafka.errors import KafkaConnectionError
from chat4all.channel.v1 import channel_pb2
from chat4all.connector.v1 import message_pb2, request_response_pb2
from chat4all.conversations.v1 import message_pb2 as conversations_pb2
from chat4all.events.v1 import event_pb2
from chat4all.files.v1 import message_pb2 as files_pb2
from chat4all.messaging.v1 import message_pb2 as messaging_pb2
from prometheus_client import REGISTRY

from connectors.telegram import service as telegram_service, updates as telegram_updates
from connectors.telegram.settings import TelegramSettings
from services.messaging import topics
from services.runtime import kafka
from services.runtime.status_details import MEDIA_TOO_LARGE, error_reason, retry_after_seconds
from tests.connectors.harness import (
    EmulatorClient,
    PublishedRecords,
    collect_published,
    connector_settings,
    redis_namespace,
    rpc_error,
    running_connector,
)
from tests.support.ports import free_port

SECRET = "s3cret_webhook-token"
WEBHOOK_PATH = "/telegram/webhook"


def new_token() -> str:
    alphabet = string.ascii_letters + string.digits + "_-"
    return f"{secrets.randbelow(9 * 10**9) + 10**9}:{''.join(secrets.choice(alphabet) for _ in range(35))}"


# Emulator, Redis, Kafka -------------------------------------------------------------------


class Emulator(EmulatorClient):
    async def requests(self, token: str, method: str) -> list[dict]:
        return (await self.call("GET", "/_emulator/requests", params={"token": token, "method": method}))["requests"]

    async def messages(self, token: str) -> list[dict]:
        return (await self.call("GET", "/_emulator/messages", params={"token": token}))["messages"]

    async def inject(self, token: str, update: dict) -> dict:
        return await self.call("POST", f"/_emulator/bots/{token}/updates", json=update)

    async def inject_batch(self, token: str, updates: list[dict], **options: Any) -> dict:
        return await self.call("POST", f"/_emulator/bots/{token}/updates:batch", json={"updates": updates, **options})

    async def webhook_deliveries(self, token: str, update_id: int, count: int) -> list[dict]:
        """The webhook attempts for one update, once `count` were made (the emulator records an
        attempt when our answer reached it, which is after we published)."""
        async with asyncio.timeout(10):
            while True:
                body = await self.call("GET", f"/_emulator/bots/{token}/webhook-deliveries")
                attempts = [d for d in body["deliveries"] if d["update_id"] == update_id]
                if len(attempts) >= count:
                    return attempts
                await asyncio.sleep(0.05)

    async def wait_until_confirmed(self, token: str) -> None:
        """Until the bot's pending (unconfirmed) updates are gone; a TimeoutError if they stay."""
        async with asyncio.timeout(10):
            while (await self.call("GET", f"/_emulator/bots/{token}/updates"))["updates"]:
                await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
async def emulator(log_dir):
    async with Emulator.running(log_dir, "telegram-emulator", "connectors.emulators.telegram", "--seed", "7",
                                "--webhook-initial-backoff", "0.1") as emulator:
        yield emulator


@pytest.fixture(scope="module")
async def redis_prefix():
    """A key prefix of this run; every key under it is deleted afterwards."""
    async with redis_namespace("telegram", TelegramSettings) as (_, prefix):
        yield prefix


class InboundRecords(PublishedRecords):
    """Everything on chat4all.inbound.v1 while the module runs, by bot (the key's middle part)."""

    async def wait_for(self, bot_id: str, predicate, timeout: float = 15.0) -> list[event_pb2.Event]:
        await self.wait_until(lambda: predicate(self.events(bot_id)), timeout)
        return self.events(bot_id)

    async def wait_for_text(self, bot_id: str, text: str, timeout: float = 15.0) -> list[event_pb2.Event]:
        return await self.wait_for(bot_id, lambda events: text in texts(events), timeout)


def texts(events: list[event_pb2.Event]) -> list[str]:
    return [event.inbound_message_received.content.text for event in events]


@pytest.fixture(scope="module")
async def inbound(kafka_bootstrap):
    async with collect_published(InboundRecords(), kafka_bootstrap, TelegramSettings, topics.INBOUND) as records:
        yield records


# The connector ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connector(emulator: Emulator, redis_prefix: str, kafka_bootstrap: str, token: str, **overrides: Any):
    values = dict(telegram_bot_token=token, telegram_api_url=emulator.url, telegram_inbound_mode="off")
    settings = connector_settings(TelegramSettings, "telegram", kafka_bootstrap, redis_prefix,
                                  **{**values, **overrides})
    async with running_connector(settings, telegram_service.setup) as (_, stub):
        yield stub, settings


def send_request(bot_id: str, chat_id: int | str, text: str = "hello", message_id: str | None = None,
                 **fields: Any) -> request_response_pb2.SendMessageRequest:
    return request_response_pb2.SendMessageRequest(
        message_id=message_id or str(uuid.uuid4()),
        conversation_id=str(uuid.uuid4()),
        account_id=bot_id,
        recipient=messaging_pb2.Recipient(
            user_id=str(uuid.uuid4()), channel=channel_pb2.CHANNEL_TELEGRAM, external_id=str(chat_id)
        ),
        content=messaging_pb2.MessageContent(text=text),
        attempt=1,
        **fields,
    )


def bot_of(token: str) -> str:
    return token.split(":", 1)[0]


# Sending ------------------------------------------------------------------------------------


async def test_a_send_reaches_telegram_once_and_a_repeat_is_answered_from_the_record(emulator, redis_prefix,
                                                                                     kafka_bootstrap, no_faults):
    token = new_token()
    bot = bot_of(token)
    async with connector(emulator, redis_prefix, kafka_bootstrap, token) as (stub, _):
        request = send_request(bot, 4242, "olá from Chat4All")
        reply = await stub.SendMessage(request)

        [call] = await emulator.requests(token, "sendMessage")
        assert call["http_method"] == "POST"
        assert call["params"] == {"chat_id": 4242, "text": "olá from Chat4All"}
        assert call["status"] == 200
        [sent] = await emulator.messages(token)
        assert reply.platform_message_ids == [str(sent["message_id"])]
        assert reply.status == messaging_pb2.DELIVERY_STATUS_SENT
        assert reply.send_time.seconds == sent["message"]["date"]

        assert await stub.SendMessage(request) == reply  # the router's retry after a lost answer
        assert len(await emulator.requests(token, "sendMessage")) == 1

        # Two replicas handed the same message at once: one sends (slowly), the other waits for
        # its result.
        await emulator.faults(latency_ms=300)
        twin = send_request(bot, 4343, "only once")
        first, second = await asyncio.gather(stub.SendMessage(twin), stub.SendMessage(twin))
        await emulator.call("DELETE", "/_emulator/faults")
        assert first == second
        assert len(await emulator.requests(token, "sendMessage")) == 2

        # In a group the bot speaks for many people: the author is named.
        await stub.SendMessage(send_request(bot, -1001234567890, "hi all", sender_display_name="Ana Lima"))
        group_call = (await emulator.requests(token, "sendMessage"))[-1]
        assert group_call["params"] == {"chat_id": -1001234567890, "text": "Ana Lima: hi all"}


async def test_platform_answers_map_to_the_contracts_codes(emulator, redis_prefix, kafka_bootstrap, no_faults):
    token = new_token()
    bot = bot_of(token)
    async with connector(emulator, redis_prefix, kafka_bootstrap, token) as (stub, _):
        await emulator.faults(fail_next=1, error_status=503)
        request = send_request(bot, 502)
        failed = await rpc_error(stub.SendMessage(request))
        assert failed.code() == grpc.StatusCode.UNAVAILABLE
        assert "503" in failed.details()
        # A failed send is not recorded: the router's retry goes out.
        assert len((await stub.SendMessage(request)).platform_message_ids) == 1

        # 400 (no such chat): permanent.
        missing = await rpc_error(stub.SendMessage(send_request(bot, 0)))
        assert missing.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "400 Bad Request: chat not found" in missing.details()

        await emulator.call("POST", f"/_emulator/bots/{token}/chats", json={"id": 503, "blocked": True})
        blocked = await rpc_error(stub.SendMessage(send_request(bot, 503)))
        assert blocked.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "403 Forbidden: bot was blocked by the user" in blocked.details()
        assert token not in blocked.details()

        # Refused by the connector itself, without calling Telegram.
        before = len(await emulator.requests(token, "sendMessage"))
        no_url = send_request(bot, 504)
        no_url.content.attachments.add(file_id="f1", content_type="image/png", size_bytes=10)
        refused = await rpc_error(stub.SendMessage(no_url))
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert refused.details() == "attachment f1 has no download URL"
        empty = await rpc_error(stub.SendMessage(send_request(bot, 504, "  ")))
        assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert empty.details() == "the message has no text or attachment"
        template = send_request(bot, 504)
        template.content.template.name = "order_update"
        assert (await rpc_error(stub.SendMessage(template))).code() == grpc.StatusCode.INVALID_ARGUMENT
        too_long = await rpc_error(stub.SendMessage(send_request(bot, 504, "x" * 4097)))
        assert too_long.code() == grpc.StatusCode.INVALID_ARGUMENT
        bad_chat = await rpc_error(stub.SendMessage(send_request(bot, "not-a-chat")))
        assert bad_chat.code() == grpc.StatusCode.INVALID_ARGUMENT
        other_bot = await rpc_error(stub.SendMessage(send_request("999", 504)))
        assert other_bot.code() == grpc.StatusCode.NOT_FOUND
        assert len(await emulator.requests(token, "sendMessage")) == before

        # Last: a 429 holds the bot's sends for its retry_after (see the test of that).
        await emulator.faults(fail_next_429=1, retry_after=7)
        throttled = await rpc_error(stub.SendMessage(send_request(bot, 501)))
        assert throttled.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert retry_after_seconds(throttled) == 7
        assert "429" in throttled.details()


async def test_the_local_limits_refuse_before_telegram_and_per_chat(emulator, redis_prefix, kafka_bootstrap):
    token = new_token()
    bot = bot_of(token)
    limits = dict(telegram_private_chat_per_second=1.0, telegram_private_chat_burst=2, telegram_group_burst=1)
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, **limits) as (stub, _):
        answers = []
        for i in range(5):
            try:
                answers.append(await stub.SendMessage(send_request(bot, 601, f"burst {i}")))
            except grpc.aio.AioRpcError as error:
                answers.append(error)
        accepted = [a for a in answers if isinstance(a, request_response_pb2.SendMessageResponse)]
        refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
        assert len(accepted) == 2 and answers[:2] == accepted
        assert [error.code() for error in refused] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 3
        for error in refused:
            assert 0 < retry_after_seconds(error) <= 1.0
        sent = await emulator.requests(token, "sendMessage")
        assert [call["params"]["text"] for call in sent] == ["burst 0", "burst 1"]  # the refused never left

        # Another chat has its own limit.
        await stub.SendMessage(send_request(bot, 602, "elsewhere"))

        # Groups: 20 a minute, one every 3 s after the burst (1 here).
        await stub.SendMessage(send_request(bot, -100777, "group 1"))
        group = await rpc_error(stub.SendMessage(send_request(bot, -100777, "group 2")))
        assert group.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert 2.5 < retry_after_seconds(group) <= 3.0

        # The wait it gave is the real one: after it, the chat takes a message again.
        await asyncio.sleep(retry_after_seconds(refused[-1]))
        await stub.SendMessage(send_request(bot, 601, "after the wait"))
        assert len(await emulator.requests(token, "sendMessage")) == 5



async def test_a_telegram_429_holds_the_bots_sends_on_every_replica_for_its_retry_after(emulator, redis_prefix,
                                                                                      kafka_bootstrap, no_faults):
    token = new_token()
    bot = bot_of(token)
    async with (
        connector(emulator, redis_prefix, kafka_bootstrap, token) as (stub, _),
        connector(emulator, redis_prefix, kafka_bootstrap, token) as (replica, _),
    ):
        await emulator.faults(fail_next_429=1, retry_after=2)
        throttled = await rpc_error(stub.SendMessage(send_request(bot, 801)))
        assert throttled.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert retry_after_seconds(throttled) == 2
        assert "429" in throttled.details()
        assert len(await emulator.requests(token, "sendMessage")) == 1

        # Within that time every send of the bot is refused before Telegram, on any replica and
        # to any chat (a 429 does not say which limit it is about), with the rest of the wait
        # (plus at most one interval of the bot's 30/s).
        for client, chat in ((replica, 801), (stub, 802), (replica, -100803)):
            held = await rpc_error(client.SendMessage(send_request(bot, chat)))
            assert held.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "429" not in held.details() and "bot" in held.details()
            assert 1.0 < retry_after_seconds(held) <= 2 + 1 / 30 + 0.01
        assert len(await emulator.requests(token, "sendMessage")) == 1

        # After the wait it gave, the bot sends again.
        await asyncio.sleep(retry_after_seconds(held))
        reply = await replica.SendMessage(send_request(bot, 802, "after the hold"))
        assert len(reply.platform_message_ids) == 1
        sent = await emulator.requests(token, "sendMessage")
        assert len(sent) == 2 and sent[-1]["params"]["text"] == "after the hold" and sent[-1]["status"] == 200


def circuit_gauge(bot: str) -> float | None:
    return REGISTRY.get_sample_value("chat4all_connector_circuit_state", {"connector": "telegram", "account": bot})


async def test_the_circuit_opens_after_consecutive_5xx_fails_fast_and_closes_when_telegram_recovers(
        emulator, redis_prefix, kafka_bootstrap, no_faults):
    token = new_token()
    bot = bot_of(token)
    breaker = dict(connector_breaker_failure_threshold=3, connector_breaker_open_seconds=0.5,
                   connector_breaker_max_open_seconds=2.0)
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, **breaker) as (stub, _):
        await emulator.faults(error_rate=1.0, error_status=502)
        # Each to a chat of its own: the chats' limits play no part here.
        failures = [await rpc_error(stub.SendMessage(send_request(bot, 700 + i))) for i in range(3)]
        assert [error.code() for error in failures] == [grpc.StatusCode.UNAVAILABLE] * 3
        assert all("502" in error.details() for error in failures)
        # Two transient failures; the third opens the circuit and says when to come back.
        assert [retry_after_seconds(error) for error in failures[:2]] == [None, None]
        assert 0 < retry_after_seconds(failures[2]) <= 0.5

        # Open: answered at once, with the wait, without calling Telegram.
        fast = await rpc_error(stub.SendMessage(send_request(bot, 703)))
        assert fast.code() == grpc.StatusCode.UNAVAILABLE
        assert "circuit" in fast.details()
        assert 0 < retry_after_seconds(fast) <= 0.5
        assert len(await emulator.requests(token, "sendMessage")) == 3
        health = await stub.CheckHealth(request_response_pb2.CheckHealthRequest(account_id=bot))
        assert health.circuit_state == message_pb2.CIRCUIT_STATE_OPEN
        assert health.circuit_retry_time.ToNanoseconds() > 0
        assert circuit_gauge(bot) == 1

        # After the wait one probe goes through; Telegram still fails: open again, twice as long.
        await asyncio.sleep(retry_after_seconds(fast))
        probe = await rpc_error(stub.SendMessage(send_request(bot, 704)))
        assert probe.code() == grpc.StatusCode.UNAVAILABLE and "502" in probe.details()
        assert 0.5 < retry_after_seconds(probe) <= 1.0
        assert len(await emulator.requests(token, "sendMessage")) == 4

        # Telegram recovers: the next probe succeeds and closes the circuit.
        await emulator.call("DELETE", "/_emulator/faults")
        await asyncio.sleep(retry_after_seconds(probe))
        reply = await stub.SendMessage(send_request(bot, 705, "back"))
        assert len(reply.platform_message_ids) == 1
        await stub.SendMessage(send_request(bot, 706, "and again"))
        sent = await emulator.requests(token, "sendMessage")
        assert [call["status"] for call in sent] == [502] * 4 + [200, 200]
        health = await stub.CheckHealth(request_response_pb2.CheckHealthRequest(account_id=bot))
        assert health.circuit_state == message_pb2.CIRCUIT_STATE_CLOSED
        assert circuit_gauge(bot) == 0

async def test_capabilities_and_health(emulator, redis_prefix, kafka_bootstrap):
    token = new_token()
    bot = bot_of(token)
    async with connector(emulator, redis_prefix, kafka_bootstrap, token) as (stub, _):
        capabilities = await stub.GetCapabilities(request_response_pb2.GetCapabilitiesRequest(account_id=bot))
        assert capabilities.channel == channel_pb2.CHANNEL_TELEGRAM
        assert set(capabilities.content_kinds) == {
            message_pb2.CONTENT_KIND_TEXT, message_pb2.CONTENT_KIND_IMAGE, message_pb2.CONTENT_KIND_VIDEO,
            message_pb2.CONTENT_KIND_AUDIO, message_pb2.CONTENT_KIND_DOCUMENT}
        # Files are uploaded by default: Telegram's multipart limits.
        assert media_limits(capabilities) == {"image": 10 * MiB, "video": 50 * MiB, "audio": 50 * MiB,
                                              "document": 50 * MiB}
        assert capabilities.supports_groups and capabilities.max_text_length == 4096
        assert list(capabilities.reported_statuses) == []  # SENT is final on Telegram
        limits = {(limit.scope, limit.max_messages, limit.period.seconds) for limit in capabilities.rate_limits}
        assert limits == {
            (message_pb2.RATE_LIMIT_SCOPE_RECIPIENT, 1, 1),
            (message_pb2.RATE_LIMIT_SCOPE_GROUP, 20, 60),
            (message_pb2.RATE_LIMIT_SCOPE_ACCOUNT, 30, 1),
        }
        health = await stub.CheckHealth(request_response_pb2.CheckHealthRequest())
        assert health.platform_reachable and health.circuit_state == message_pb2.CIRCUIT_STATE_CLOSED
        assert 0 < health.latency.ToNanoseconds() < 2e9
        assert abs(health.check_time.seconds - time.time()) < 5
        assert len(await emulator.requests(token, "getMe")) == 1
        unknown = await rpc_error(stub.CheckHealth(request_response_pb2.CheckHealthRequest(account_id="1")))
        assert unknown.code() == grpc.StatusCode.NOT_FOUND

    # Files by URL: Telegram fetches them itself, and takes smaller ones.
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, telegram_media_delivery="url") as (stub, _):
        capabilities = await stub.GetCapabilities(request_response_pb2.GetCapabilitiesRequest(account_id=bot))
        assert media_limits(capabilities) == {"image": 5 * MiB, "video": 20 * MiB, "audio": 20 * MiB,
                                              "document": 20 * MiB}

    # A platform that does not answer.
    async with connector(emulator, redis_prefix, kafka_bootstrap, token,
                         telegram_api_url=f"http://127.0.0.1:{free_port()}") as (stub, _):
        health = await stub.CheckHealth(request_response_pb2.CheckHealthRequest())
        assert not health.platform_reachable and health.detail
        assert token not in health.detail


# Media --------------------------------------------------------------------------------------

MiB = 1024 * 1024
_KIND_NAMES = {message_pb2.CONTENT_KIND_IMAGE: "image", message_pb2.CONTENT_KIND_VIDEO: "video",
               message_pb2.CONTENT_KIND_AUDIO: "audio", message_pb2.CONTENT_KIND_DOCUMENT: "document"}


def media_limits(capabilities: request_response_pb2.GetCapabilitiesResponse) -> dict[str, int]:
    return {_KIND_NAMES[limit.content_kind]: limit.max_size_bytes for limit in capabilities.media_limits}


def png(width: int, height: int) -> bytes:
    """A real PNG (the emulator reads a photo's dimensions), of noise so it does not compress."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + os.urandom(3 * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 0)) + chunk(b"IEND", b"")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Storage:
    """Stands in for S3: serves files from disk at presigned-looking URLs (no file extension,
    a signature in the query) and counts the GETs of each; a file may answer an error status,
    or break off half-way, instead."""

    def __init__(self, directory: Path, url: str) -> None:
        self.directory = directory
        self.url = url
        self.gets: Counter[str] = Counter()
        self.status: dict[str, int] = {}
        self.broken: set[str] = set()

    def put(self, data: bytes, content_type: str) -> str:
        key = uuid.uuid4().hex
        (self.directory / key).write_bytes(data)
        (self.directory / f"{key}.type").write_text(content_type)
        return f"{self.url}/chat4all-files/{key}?X-Amz-Expires=900&X-Amz-Signature={secrets.token_hex(32)}"

    @staticmethod
    def key(url: str) -> str:
        return url.split("?", 1)[0].rsplit("/", 1)[1]

    async def serve(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        self.gets[key] += 1
        if key in self.status:
            return web.Response(status=self.status[key], text="storage says no")
        path = self.directory / key
        if not path.exists():
            return web.Response(status=404, text="NoSuchKey")
        content_type = (self.directory / f"{key}.type").read_text()
        if key in self.broken:
            # The stated length, half of the bytes, then the connection drops.
            data = path.read_bytes()
            response = web.StreamResponse(headers={"Content-Type": content_type, "Content-Length": str(len(data))})
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            request.transport.close()
            return response
        # From disk (sendfile): the bytes are in no Python object of this process.
        return web.FileResponse(path, headers={"Content-Type": content_type})


@pytest.fixture(scope="module")
async def storage(tmp_path_factory):
    app = web.Application()
    port = free_port()
    served = Storage(tmp_path_factory.mktemp("storage"), f"http://127.0.0.1:{port}")
    app.router.add_get("/chat4all-files/{key}", served.serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield served
    finally:
        await runner.cleanup()


def attachment(storage: Storage, data: bytes, content_type: str, filename: str, caption: str = "",
               size_bytes: int | None = None) -> messaging_pb2.Attachment:
    """A file as the router hands it to a connector: detected type, size, a fresh download URL."""
    return messaging_pb2.Attachment(
        file_id=str(uuid.uuid4()), caption=caption, filename=filename, content_type=content_type,
        size_bytes=len(data) if size_bytes is None else size_bytes, download_url=storage.put(data, content_type),
    )


def media_request(bot: str, chat_id: int | str, *attachments: messaging_pb2.Attachment, text: str | None = None,
                  **fields: Any) -> request_response_pb2.SendMessageRequest:
    request = send_request(bot, chat_id, text, **fields)
    request.content.attachments.extend(attachments)
    return request


async def emulator_file(emulator: Emulator, token: str, file_id: str) -> bytes:
    """What Telegram keeps of a file it received (getFile, then the file download)."""
    async with emulator.http.post(f"{emulator.url}/bot{token}/getFile", json={"file_id": file_id}) as response:
        path = (await response.json())["result"]["file_path"]
    async with emulator.http.get(f"{emulator.url}/file/bot{token}/{path}") as response:
        return await response.read()


async def test_a_photo_by_upload_reaches_telegram_as_multipart_with_its_exact_bytes(emulator, redis_prefix,
                                                                                    kafka_bootstrap, storage):
    token = new_token()
    bot = bot_of(token)
    photo = png(320, 200)
    file = attachment(storage, photo, "image/png", "chart.png", caption="olha o gráfico")
    async with connector(emulator, redis_prefix, kafka_bootstrap, token) as (stub, settings):
        assert settings.telegram_media_delivery == "upload"  # the default
        reply = await stub.SendMessage(media_request(bot, 4242, file, sender_display_name="Ana Lima"))

    # One sendPhoto, the file in the request: multipart (every field a string), its bytes exactly.
    [call] = await emulator.requests(token, "sendPhoto")
    assert call["status"] == 200
    assert call["params"] == {
        "chat_id": "4242",
        # No text: the sender's name rides on the caption.
        "caption": "Ana Lima: olha o gráfico",
        "photo": {"filename": "chart.png", "size": len(photo), "sha256": sha256(photo), "content_type": "image/png"},
    }
    [sent] = await emulator.messages(token)
    assert sent["media"]["source"] == "upload"
    assert reply.platform_message_ids == [str(sent["message_id"])]
    assert reply.send_time.seconds == sent["message"]["date"]
    assert sent["message"]["caption"] == "Ana Lima: olha o gráfico"
    assert await emulator_file(emulator, token, sent["message"]["photo"][-1]["file_id"]) == photo
    assert storage.gets[Storage.key(file.download_url)] == 1

    # A file without a caption: the name alone is its caption.
    document = attachment(storage, b"%PDF-1.7 one page", "application/pdf", "nota.pdf")
    async with connector(emulator, redis_prefix, kafka_bootstrap, token) as (stub, _):
        await stub.SendMessage(media_request(bot, 4242, document, sender_display_name="Ana Lima"))
    [call] = await emulator.requests(token, "sendDocument")
    assert (call["params"]["caption"], call["params"]["document"]["filename"]) == ("Ana Lima", "nota.pdf")


async def test_a_document_by_url_is_fetched_by_telegram_itself(emulator, redis_prefix, kafka_bootstrap, storage):
    token = new_token()
    bot = bot_of(token)
    report = os.urandom(300_000)
    file = attachment(storage, report, "application/pdf", "relatório.pdf", caption="segue o relatório")
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, telegram_media_delivery="url") as (stub, _):
        reply = await stub.SendMessage(media_request(bot, 4242, file))

    # The URL is the document parameter; Telegram fetched it: the bytes it keeps are the file's.
    [call] = await emulator.requests(token, "sendDocument")
    assert call["params"] == {"chat_id": 4242, "document": file.download_url, "caption": "segue o relatório"}
    [sent] = await emulator.messages(token)
    assert reply.platform_message_ids == [str(sent["message_id"])]
    assert (sent["media"]["source"], sent["media"]["url"]) == ("url", file.download_url)
    assert (sent["media"]["size"], sent["media"]["sha256"]) == (len(report), sha256(report))
    document = sent["message"]["document"]
    assert document["mime_type"] == "application/pdf"  # as storage served it (the URL has no extension)
    assert await emulator_file(emulator, token, document["file_id"]) == report
    assert storage.gets[Storage.key(file.download_url)] == 1  # by Telegram; the connector never read it


async def test_text_and_files_become_one_telegram_message_each_in_order(emulator, redis_prefix, kafka_bootstrap,
                                                                        storage):
    token = new_token()
    bot = bot_of(token)
    group = -1002233445566
    photo, video, song = png(64, 48), os.urandom(40_000), os.urandom(30_000)
    gif, sheet = b"GIF89a" + os.urandom(500), os.urandom(9_000)
    files = [
        attachment(storage, photo, "image/png", "foto.png", caption="a foto"),
        attachment(storage, video, "video/mp4", "clip.mp4"),
        attachment(storage, song, "audio/mpeg", "song.mp3", caption="ouve"),
        attachment(storage, gif, "image/gif", "dance.gif"),
        attachment(storage, sheet, "application/vnd.ms-excel", "contas.xls"),
    ]
    request = media_request(bot, group, *files, text="veja os arquivos", sender_display_name="Ana Lima")
    async with connector(emulator, redis_prefix, kafka_bootstrap, token) as (stub, _):
        reply = await stub.SendMessage(request)
        assert await stub.SendMessage(request) == reply  # a repeat sends nothing

    sent = await emulator.messages(token)
    # The text first (named), then each file by its kind, with its own caption, in order.
    assert [m["method"] for m in sent] == ["sendMessage", "sendPhoto", "sendVideo", "sendAudio", "sendDocument",
                                          "sendDocument"]
    assert sent[0]["message"]["text"] == "Ana Lima: veja os arquivos"
    assert [m["message"].get("caption") for m in sent[1:]] == ["a foto", None, "ouve", None, None]
    assert [m["media"]["sha256"] for m in sent[1:]] == [sha256(data) for data in (photo, video, song, gif, sheet)]
    assert [m["media"]["file_name"] for m in sent[2:]] == ["clip.mp4", "song.mp3", "dance.gif", "contas.xls"]
    # Every message id, in send order.
    assert list(reply.platform_message_ids) == [str(m["message_id"]) for m in sent]
    assert len(set(reply.platform_message_ids)) == 6
    assert all(storage.gets[Storage.key(file.download_url)] == 1 for file in files)


async def test_a_file_over_telegrams_limit_is_refused_before_any_call(emulator, redis_prefix, kafka_bootstrap,
                                                                     storage):
    token = new_token()
    bot = bot_of(token)
    small = b"%PDF-1.7 tiny"
    report = attachment(storage, small, "application/pdf", "report.pdf", size_bytes=60_000_000)
    photo = attachment(storage, small, "image/jpeg", "cat.jpg", size_bytes=10 * MiB + 1)
    async with connector(emulator, redis_prefix, kafka_bootstrap, token) as (stub, _):
        # With a text before it: the text does not go either.
        refused = await rpc_error(stub.SendMessage(media_request(bot, 4242, report, text="o relatório")))
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert refused.details() == (
            "document report.pdf is 60000000 bytes; Telegram accepts documents up to 50 MB by upload")
        # The router fails the delivery for good, without a dead letter: a retry cannot help.
        assert error_reason(refused) == MEDIA_TOO_LARGE
        big_photo = await rpc_error(stub.SendMessage(media_request(bot, 4242, photo)))
        assert big_photo.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert big_photo.details() == (
            f"photo cat.jpg is {10 * MiB + 1} bytes; Telegram accepts photos up to 10 MB by upload")
        long_caption = attachment(storage, small, "application/pdf", "a.pdf", caption="x" * 1025)
        too_long = await rpc_error(stub.SendMessage(media_request(bot, 4242, long_caption)))
        assert too_long.code() == grpc.StatusCode.INVALID_ARGUMENT and "1025" in too_long.details()

    # By URL, Telegram fetches at most 5 MB for a photo, 20 MB for other files.
    by_url = attachment(storage, small, "image/jpeg", "cat.jpg", size_bytes=5 * MiB + 1)
    video = attachment(storage, small, "video/mp4", "clip.mp4", size_bytes=20 * MiB + 1)
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, telegram_media_delivery="url") as (stub, _):
        refused = await rpc_error(stub.SendMessage(media_request(bot, 4242, by_url)))
        assert refused.details() == f"photo cat.jpg is {5 * MiB + 1} bytes; Telegram accepts photos up to 5 MB by URL"
        refused = await rpc_error(stub.SendMessage(media_request(bot, 4242, video)))
        assert refused.details() == (
            f"video clip.mp4 is {20 * MiB + 1} bytes; Telegram accepts videos up to 20 MB by URL")
        assert error_reason(refused) == MEDIA_TOO_LARGE

    # Nothing reached Telegram, nothing was read from storage.
    assert (await emulator.call("GET", "/_emulator/requests", params={"token": token}))["requests"] == []
    assert not any(storage.gets[Storage.key(f.download_url)] for f in (report, photo, long_caption, by_url, video))


async def test_a_send_that_failed_at_its_second_file_resends_only_what_was_not_sent(emulator, redis_prefix,
                                                                                  kafka_bootstrap, storage,
                                                                                  no_faults):
    token = new_token()
    bot = bot_of(token)
    group = -1003344556677
    photo, report = png(80, 60), os.urandom(120_000)
    files = [attachment(storage, photo, "image/png", "a.png"), attachment(storage, report, "application/pdf", "b.pdf")]
    request = media_request(bot, group, *files, text="dois arquivos")
    async with connector(emulator, redis_prefix, kafka_bootstrap, token) as (stub, _):
        # The text and the photo go; Telegram fails the document with a 502.
        await emulator.faults(fail_next=1, error_status=502, fail_after=2)
        failed = await rpc_error(stub.SendMessage(request))
        assert failed.code() == grpc.StatusCode.UNAVAILABLE and "502" in failed.details()
        first = await emulator.messages(token)
        assert [m["method"] for m in first] == ["sendMessage", "sendPhoto"]

        # The router's retry: only the document goes; the answer lists all three, in order.
        request.attempt = 2
        reply = await stub.SendMessage(request)
        assert await stub.SendMessage(request) == reply

    sent = await emulator.messages(token)
    assert [m["method"] for m in sent] == ["sendMessage", "sendPhoto", "sendDocument"]
    assert sent[:2] == first
    assert list(reply.platform_message_ids) == [str(m["message_id"]) for m in sent]
    calls = (await emulator.call("GET", "/_emulator/requests", params={"token": token}))["requests"]
    assert [(c["method"], c["status"]) for c in calls] == [
        ("sendMessage", 200), ("sendPhoto", 200), ("sendDocument", 502), ("sendDocument", 200)]
    assert sent[2]["media"]["sha256"] == sha256(report)
    assert [storage.gets[Storage.key(f.download_url)] for f in files] == [1, 2]


async def test_a_send_longer_than_its_lock_is_not_taken_over_by_a_duplicate(emulator, redis_prefix, kafka_bootstrap,
                                                                            storage, no_faults):
    """Each message of a send renews its lock: a send of three slow uploads outlasts the lock,
    and a duplicate of it meanwhile waits for its result instead of sending the rest again."""
    token = new_token()
    bot = bot_of(token)
    files = [attachment(storage, os.urandom(5_000), "application/pdf", f"{n}.pdf") for n in range(3)]
    request = media_request(bot, -1004455667788, *files)
    short_lock = dict(connector_http_timeout_seconds=1.0, connector_send_lock_seconds=1.5,
                      telegram_media_send_timeout_seconds=1.2)
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, **short_lock) as (stub, _):
        await emulator.faults(latency_ms=700)  # three sends: about 2.1 s, over the 1.5 s lock
        first = asyncio.ensure_future(stub.SendMessage(request))
        await asyncio.sleep(1.6)
        duplicate = await stub.SendMessage(request)
        assert await first == duplicate

    sent = await emulator.messages(token)
    assert len(sent) == 3 and list(duplicate.platform_message_ids) == [str(m["message_id"]) for m in sent]


async def test_each_telegram_message_of_a_send_counts_against_the_chats_limit(emulator, redis_prefix,
                                                                              kafka_bootstrap, storage):
    token = new_token()
    bot = bot_of(token)
    files = [attachment(storage, png(40, 30), "image/png", f"{n}.png") for n in range(2)]
    request = media_request(bot, 4343, *files, text="três mensagens")
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, telegram_private_chat_burst=2) as (stub, _):
        # Two messages at once to the chat: the text and the first photo go, the second waits.
        throttled = await rpc_error(stub.SendMessage(request))
        assert throttled.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "private_chat send limit" in throttled.details()
        assert 0 < retry_after_seconds(throttled) <= 1.0
        assert [m["method"] for m in await emulator.messages(token)] == ["sendMessage", "sendPhoto"]
        assert storage.gets[Storage.key(files[1].download_url)] == 0

        await asyncio.sleep(retry_after_seconds(throttled))
        request.attempt = 2
        reply = await stub.SendMessage(request)

    sent = await emulator.messages(token)
    assert [m["method"] for m in sent] == ["sendMessage", "sendPhoto", "sendPhoto"]
    assert list(reply.platform_message_ids) == [str(m["message_id"]) for m in sent]
    assert [storage.gets[Storage.key(f.download_url)] for f in files] == [1, 1]


async def test_storage_failures_are_told_apart_from_telegrams(emulator, redis_prefix, kafka_bootstrap, storage):
    token = new_token()
    bot = bot_of(token)
    gone = attachment(storage, b"%PDF gone", "application/pdf", "gone.pdf")
    storage.status[Storage.key(gone.download_url)] = 403  # an expired or revoked URL
    down = attachment(storage, b"%PDF down", "application/pdf", "down.pdf")
    storage.status[Storage.key(down.download_url)] = 503
    broken = attachment(storage, os.urandom(2 * MiB), "application/pdf", "broken.pdf")
    storage.broken.add(Storage.key(broken.download_url))
    breaker = dict(connector_breaker_failure_threshold=2)
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, **breaker) as (stub, _):
        refused = await rpc_error(stub.SendMessage(media_request(bot, 4444, gone)))
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert refused.details() == "the download URL of gone.pdf answered HTTP 403"

        # Storage down, or the download breaking off in the middle of the upload: transient,
        # and not Telegram's failure, so the bot's circuit stays closed.
        for file, reason in ((down, "storage answered HTTP 503 for down.pdf"),
                             (broken, "reading broken.pdf from storage")):
            failed = await rpc_error(stub.SendMessage(media_request(bot, 4444, file)))
            assert failed.code() == grpc.StatusCode.UNAVAILABLE
            assert reason in failed.details(), failed.details()
            assert retry_after_seconds(failed) is None
        health = await stub.CheckHealth(request_response_pb2.CheckHealthRequest(account_id=bot))
        assert health.circuit_state == message_pb2.CIRCUIT_STATE_CLOSED
        assert await emulator.messages(token) == []
        reply = await stub.SendMessage(send_request(bot, 4445, "text still goes"))
        assert len(reply.platform_message_ids) == 1


async def test_a_large_file_streams_from_storage_to_telegram_without_being_held_in_memory(
        emulator, redis_prefix, kafka_bootstrap, storage):
    token = new_token()
    bot = bot_of(token)
    archive = os.urandom(40 * MiB)
    file = attachment(storage, archive, "application/zip", "backup.zip")
    async with connector(emulator, redis_prefix, kafka_bootstrap, token) as (stub, _):
        tracemalloc.start()
        try:
            reply = await stub.SendMessage(media_request(bot, 4646, file), timeout=60)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    # The connector (in this process) held a few chunks at a time, never the 40 MB.
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB"
    [sent] = await emulator.messages(token)
    assert reply.platform_message_ids == [str(sent["message_id"])]
    assert (sent["media"]["size"], sent["media"]["sha256"]) == (len(archive), sha256(archive))


# Inbound: webhook ---------------------------------------------------------------------------


def webhook_settings(port: int) -> dict[str, Any]:
    return dict(
        telegram_inbound_mode="webhook",
        connector_webhook_port=port,
        telegram_webhook_path=WEBHOOK_PATH,
        telegram_webhook_secret=SECRET,
        telegram_webhook_public_url=f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
    )


async def test_webhook_updates_are_published_once_each_and_only_with_the_secret(emulator, redis_prefix,
                                                                                kafka_bootstrap, inbound):
    token = new_token()
    bot = bot_of(token)
    port = free_port()
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, **webhook_settings(port)):
        [registration] = await emulator.requests(token, "setWebhook")
        assert registration["params"]["secret_token"] == SECRET
        assert registration["params"]["max_connections"] == 1  # Telegram then delivers in order, one at a time

        before = time.time()
        injected = await emulator.inject(token, {
            "from": {"id": 777001, "first_name": "Ana", "last_name": "Lima", "username": "analima"},
            "text": "oi, tudo bem?",
        })
        [event] = await inbound.wait_for(bot, lambda events: len(events) >= 1)
        message = injected["update"]["message"]
        [key] = inbound.keys(bot)
        assert key == f"{channel_pb2.CHANNEL_TELEGRAM}:{bot}:777001".encode()
        assert event.WhichOneof("payload") == "inbound_message_received"
        assert uuid.UUID(event.event_id).version == 4
        assert event.conversation_id == ""
        received = event.inbound_message_received
        assert received.channel == channel_pb2.CHANNEL_TELEGRAM
        assert received.account_id == bot
        assert received.external_sender_id == "777001"
        assert received.external_sender_display_name == "Ana Lima"
        assert received.external_message_id == str(message["message_id"])
        assert received.external_chat_id == "777001"
        assert received.chat_type == conversations_pb2.CONVERSATION_TYPE_DIRECT
        assert received.content == messaging_pb2.MessageContent(text="oi, tudo bem?")
        assert received.platform_time.seconds == message["date"]
        assert event.occur_time == received.platform_time
        assert before - 1 <= received.receive_time.ToNanoseconds() / 1e9 <= time.time()

        # A group message; then what is not a user's text message is dropped.
        await emulator.inject(token, {
            "chat": {"id": -1009988776655, "type": "supergroup", "title": "Team"},
            "from": {"id": 777002, "first_name": "Bruno"}, "text": "in the group",
        })
        await emulator.inject(token, {"from": {"id": 777003, "first_name": "Bot", "is_bot": True}, "text": "a bot"})
        await emulator.inject(token, {"from": {"id": 777001, "first_name": "Ana"}, "text": "edit",
                                      "update_type": "edited_message"})
        # Forged: no secret, and a wrong one. Nothing is published for them.
        forged = {"update_id": 1, "message": {"message_id": 1, "date": 1, "text": "forged",
                                              "chat": {"id": 777001, "type": "private"},
                                              "from": {"id": 777001, "is_bot": False, "first_name": "Eve"}}}
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with http.post(url, json=forged, headers=headers) as response:
                    assert response.status == 401
        # A duplicated delivery (Telegram retrying after a lost answer).
        duplicated = await emulator.inject(token, {"from": {"id": 777001, "first_name": "Ana"}, "text": "twice?",
                                                   "duplicate": 2})
        await emulator.inject(token, {"from": {"id": 777001, "first_name": "Ana"}, "text": "last"})

        events = await inbound.wait_for(bot, lambda events: {"last", "in the group"} <= set(texts(events)))
        # Order holds per chat (a chat is one partition), not across chats.
        private = [e for e in events if e.inbound_message_received.external_chat_id == "777001"]
        [group_event] = [e for e in events if e.inbound_message_received.external_chat_id == "-1009988776655"]
        assert texts(private) == ["oi, tudo bem?", "twice?", "last"]
        assert len(events) == 4
        group = group_event.inbound_message_received
        assert group.chat_type == conversations_pb2.CONVERSATION_TYPE_GROUP
        assert (group.external_chat_id, group.external_sender_id) == ("-1009988776655", "777002")
        assert group.external_sender_display_name == "Bruno"
        assert f"{channel_pb2.CHANNEL_TELEGRAM}:{bot}:-1009988776655".encode() in inbound.keys(bot)
        twice = await emulator.webhook_deliveries(token, duplicated["update_id"], 3)
        assert [d["status"] for d in twice] == [200, 200, 200]


async def test_webhook_redeliveries_in_any_order_are_published_once_and_none_lost(emulator, redis_prefix,
                                                                                 kafka_bootstrap, inbound):
    """Telegram itself keeps order (one connection, next update after the previous was
    acknowledged); a platform that shuffles anyway loses nothing and duplicates nothing.
    Restoring order there would mean acknowledging an update before Kafka has it."""
    token = new_token()
    bot = bot_of(token)
    port = free_port()
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, **webhook_settings(port)):
        sender = {"id": 888001, "first_name": "Caio"}
        batch = await emulator.inject_batch(
            token, [{"from": sender, "text": f"m{i}", "duplicate": 1} for i in range(5)], shuffle=True, seed=3
        )
        events = await inbound.wait_for(bot, lambda events: len(events) >= 5)
        await emulator.inject(token, {"from": sender, "text": "sentinel"})
        events = await inbound.wait_for_text(bot, "sentinel")
        assert sorted(texts(events)[:-1]) == [f"m{i}" for i in range(5)]
        assert len(events) == 6
        deliveries = (await emulator.call("GET", f"/_emulator/bots/{token}/webhook-deliveries"))["deliveries"]
        delivered = [d["update_id"] for d in deliveries if d["update_id"] in batch["update_ids"]]
        assert len(delivered) == 10 and delivered != sorted(delivered)  # the emulator did shuffle


async def test_a_webhook_update_kafka_did_not_take_is_answered_500_and_comes_again(emulator, redis_prefix,
                                                                                  kafka_bootstrap, inbound,
                                                                                  monkeypatch):
    token = new_token()
    bot = bot_of(token)
    publish = kafka.publish
    calls = 0

    async def flaky_publish(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KafkaConnectionError("broker unavailable")
        return await publish(*args, **kwargs)

    monkeypatch.setattr(kafka, "publish", flaky_publish)
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, **webhook_settings(free_port())):
        injected = await emulator.inject(token, {"from": {"id": 555001, "first_name": "Eva"}, "text": "persist me"})
        events = await inbound.wait_for_text(bot, "persist me")
        attempts = await emulator.webhook_deliveries(token, injected["update_id"], 2)
    assert [d["status"] for d in attempts] == [500, 200]
    assert texts(events) == ["persist me"] and calls == 2


# Inbound: polling ---------------------------------------------------------------------------


async def test_polling_publishes_in_update_order_once_and_resumes_after_a_restart(emulator, redis_prefix,
                                                                                   kafka_bootstrap, inbound):
    token = new_token()
    bot = bot_of(token)
    polling = dict(telegram_inbound_mode="polling", telegram_poll_timeout_seconds=5)
    sender = {"id": 999001, "first_name": "Dora"}
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, **polling):
        # Queued out of order (and one twice): one getUpdates answer holds them all.
        batch = await emulator.inject_batch(
            token, [{"from": sender, "text": f"p{i}", "duplicate": int(i == 1)} for i in range(4)], shuffle=True, seed=7
        )
        events = await inbound.wait_for(bot, lambda events: len(events) >= 4)
        assert texts(events) == ["p0", "p1", "p2", "p3"]
        assert len({event.event_id for event in events}) == 4
        # The next getUpdates confirms them: Telegram forgets them.
        await emulator.wait_until_confirmed(token)

    await emulator.call("DELETE", "/_emulator/requests")
    await emulator.inject(token, {"from": sender, "text": "while down"})
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, **polling):
        await inbound.wait_for_text(bot, "while down")
        await emulator.inject(token, {"from": sender, "text": "after restart"})
        events = await inbound.wait_for_text(bot, "after restart")
        first_poll = (await emulator.requests(token, "getUpdates"))[0]
        # It resumed right after the last update it handled before the restart.
        assert first_poll["params"]["offset"] == max(batch["update_ids"]) + 1
    assert texts(events) == ["p0", "p1", "p2", "p3", "while down", "after restart"]


# Inbound media ------------------------------------------------------------------------------


def media_imports(outcome: str) -> float:
    return REGISTRY.get_sample_value("chat4all_connector_media_imports_total",
                                     {"connector": "telegram", "outcome": outcome}) or 0.0


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def get_file_ids(emulator: Emulator, token: str) -> list[str]:
    """The file_ids the bot asked getFile about, in order."""
    return [call["params"]["file_id"] for call in await emulator.requests(token, "getFile")]


def no_token_logged(records: list[logging.LogRecord], token: str) -> bool:
    """Neither a log line nor its fields hold the bot token (the file URLs and Bot API URLs do)."""
    return all(token not in record.getMessage() and token not in str(vars(record)) for record in records)


async def test_an_inbound_photo_and_document_are_imported_into_the_file_service_before_being_published(
        emulator, redis_prefix, kafka_bootstrap, inbound, file_service, caplog):
    caplog.set_level(logging.INFO)
    token = new_token()
    bot = bot_of(token)
    photo = png(1000, 500)  # Telegram lists it with its 90, 320 and 800 px sizes first
    # Three parts of the file service's 5 MiB: spooled to disk, then PUT from it a few at once.
    report = b"%PDF-1.4\n" + os.urandom(11 * MiB + 321)
    sender = {"id": 321001, "first_name": "Ana", "last_name": "Lima"}
    imported_before = media_imports("imported")
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, **webhook_settings(free_port()),
                         files_target=file_service.target):
        photo_update = await emulator.inject(token, {"from": sender, "caption": "olha a foto 📷",
                                                     "photo": {"bytes_b64": b64(photo)}})
        document_update = await emulator.inject(token, {"from": sender, "document": {
            "bytes_b64": b64(report), "file_name": "relatório 4521.pdf", "mime_type": "application/pdf"}})
        photo_event, document_event = await inbound.wait_for(bot, lambda events: len(events) >= 2, timeout=30)

    sizes = photo_update["update"]["message"]["photo"]
    assert [size["width"] for size in sizes] == [90, 320, 800, 1000]
    largest = sizes[-1]["file_id"]
    document = document_update["update"]["message"]["document"]
    assert media_imports("imported") == imported_before + 2
    for event, update, data, content_type, caption, filename in (
        (photo_event, photo_update, photo, "image/png", "olha a foto 📷", f"image-{largest}.png"),
        (document_event, document_update, report, "application/pdf", "", "relatório 4521.pdf"),
    ):
        received = event.inbound_message_received
        assert received.external_message_id == str(update["update"]["message"]["message_id"])
        assert received.external_sender_display_name == "Ana Lima"
        # Imported: an attachment, nothing left as Telegram's reference. The caption is the file's
        # (a client shows it with the file): not repeated as the message text.
        assert list(received.media) == []
        assert not received.content.HasField("text")
        [attachment] = received.content.attachments
        assert (attachment.caption, attachment.filename) == (caption, filename)
        # The file service has exactly the bytes Telegram served: their SHA-256 and size, in S3.
        file = await file_service.file(attachment.file_id)
        assert (file.sha256, file.size_bytes) == (sha256(data), len(data))
        assert (file.filename, file.declared_content_type, file.owner_user_id) == (filename, content_type, "")
        assert file.state != files_pb2.FILE_STATE_UPLOADING  # completed: processing takes it from here
        assert await file_service.stored_bytes(attachment.file_id) == data
        assert await file_service.files_with_sha256(file.sha256) == 1

    # Fetched the Bot API's way: getFile for the photo's largest size and the document, then the
    # download; the token in both URLs is in no log line.
    assert await get_file_ids(emulator, token) == [largest, document["file_id"]]
    assert [call["status"] for call in await emulator.requests(token, "getFile")] == [200, 200]
    assert no_token_logged(caplog.records, token)


async def test_polling_imports_media_too_and_a_redelivered_update_reuses_its_file(
        emulator, redis_prefix, kafka_bootstrap, inbound, file_service):
    token = new_token()
    bot = bot_of(token)
    photo = png(200, 100)
    sender = {"id": 321002, "first_name": "Bia"}
    polling = dict(telegram_inbound_mode="polling", telegram_poll_timeout_seconds=5)
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, **polling, files_target=file_service.target):
        # In one getUpdates answer twice: one import, one event.
        injected = await emulator.inject(token, {"from": sender, "caption": "de novo", "duplicate": 1,
                                                 "photo": {"bytes_b64": b64(photo)}})
        [first] = await inbound.wait_for(bot, lambda events: len(events) >= 1)
        await emulator.wait_until_confirmed(token)
    [attachment] = first.inbound_message_received.content.attachments
    assert attachment.caption == "de novo" and not first.inbound_message_received.content.text
    assert (await file_service.file(attachment.file_id)).sha256 == sha256(photo)
    assert await file_service.files_with_sha256(sha256(photo)) == 1
    assert len(await get_file_ids(emulator, token)) == 1
    assert len(inbound.events(bot)) == 1

    # Delivered again to a connector that does not remember handling it (as after a crash between
    # the import and the publish): imported into the same upload, which is complete, so reused.
    reused_before = media_imports("reused")
    port = free_port()
    webhook = {**webhook_settings(port), "telegram_webhook_public_url": ""}
    async with (
        redis_namespace("telegram", TelegramSettings) as (_, forgetful_prefix),
        connector(emulator, forgetful_prefix, kafka_bootstrap, token, **webhook, files_target=file_service.target),
        aiohttp.ClientSession() as http,
    ):
        async with http.post(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", json=injected["update"],
                             headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
            assert response.status == 200
        first_again, second = await inbound.wait_for(bot, lambda events: len(events) >= 2)

    assert first_again == first
    assert second.event_id == first.event_id
    assert list(second.inbound_message_received.content.attachments) == [attachment]
    assert await file_service.files_with_sha256(sha256(photo)) == 1
    assert media_imports("reused") == reused_before + 1


async def test_media_that_cannot_be_imported_keep_telegrams_reference_and_the_caption_is_the_text(
        emulator, redis_prefix, kafka_bootstrap, inbound, file_service, caplog):
    caplog.set_level(logging.INFO)
    token = new_token()
    bot = bot_of(token)
    sender = {"id": 321003, "first_name": "Caio"}
    before = {outcome: media_imports(outcome) for outcome in ("too_large", "download_failed")}
    # A file_id of another bot: file ids are the bot's own, so getFile refuses it.
    other = await emulator.inject(new_token(), {"from": sender, "photo": {"bytes_b64": b64(png(40, 40))}})
    foreign_id = other["update"]["message"]["photo"][-1]["file_id"]
    port = free_port()
    async with connector(emulator, redis_prefix, kafka_bootstrap, token, **webhook_settings(port),
                         files_target=file_service.target):
        # Above the Bot API's 20 MB downloads: not even asked for.
        big = await emulator.inject(token, {"from": sender, "caption": "o backup inteiro",
                                             "document": {"size": 25 * MiB, "file_name": "backup.zip"}})
        # Known to Telegram (getFile answers), but its bytes are gone: the download fails.
        gone = await emulator.inject(token, {"message": {
            "chat": {"id": sender["id"], "type": "private"}, "from": sender, "caption": "a nota",
            "document": {"file_id": "BQACAgIAAxkBAAI" + "g" * 60, "file_unique_id": "AQADgone",
                         "file_size": 1234, "file_name": "nota.pdf", "mime_type": "application/pdf"}}})
        async with aiohttp.ClientSession() as http:
            foreign = {"update_id": 1, "message": {
                "message_id": 9001, "date": int(time.time()), "chat": {"id": sender["id"], "type": "private"},
                "from": {**sender, "is_bot": False}, "caption": "e esta?",
                "photo": [{"file_id": foreign_id, "file_unique_id": "AQADforeign", "width": 40, "height": 40,
                           "file_size": 5000}]}}
            async with http.post(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", json=foreign,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
                assert response.status == 200
        events = await inbound.wait_for(bot, lambda events: len(events) >= 3)

    by_message = {event.inbound_message_received.external_message_id: event.inbound_message_received
                  for event in events}
    # Each is published anyway, with Telegram's file_id for a later fetch and its caption as the
    # text (nothing else would show what the sender wrote).
    for update, kind, text, filename, mime_type in (
        (big["update"], message_pb2.CONTENT_KIND_DOCUMENT, "o backup inteiro", "backup.zip", "application/zip"),
        (gone["update"], message_pb2.CONTENT_KIND_DOCUMENT, "a nota", "nota.pdf", "application/pdf"),
        (foreign, message_pb2.CONTENT_KIND_IMAGE, "e esta?", "", ""),
    ):
        message = update["message"]
        received = by_message[str(message["message_id"])]
        assert list(received.content.attachments) == []
        assert received.content.text == text
        [media] = received.media
        file_id = (message["document"] if "document" in message else message["photo"][-1])["file_id"]
        assert (media.kind, media.media_id, media.caption) == (kind, file_id, text)
        assert (media.filename, media.mime_type) == (filename, mime_type)
    big_id = big["update"]["message"]["document"]["file_id"]
    assert big_id not in await get_file_ids(emulator, token)  # refused before asking Telegram
    # The gone document's getFile answered, the foreign photo's was refused (in either order).
    assert sorted(call["status"] for call in await emulator.requests(token, "getFile")) == [200, 400]
    assert media_imports("too_large") == before["too_large"] + 1
    assert media_imports("download_failed") == before["download_failed"] + 2
    assert await file_service.file_count() == 0
    assert no_token_logged(caplog.records, token)


def test_every_kind_of_telegram_media_becomes_a_reference_to_its_file():
    def update(**media: Any) -> dict:
        return {"update_id": 5, "message": {"message_id": 7, "date": 1, "chat": {"id": 42, "type": "private"},
                                            "from": {"id": 42, "is_bot": False, "first_name": "Ana"}, **media}}

    def file(name: str, **fields: Any) -> dict:
        return {"file_id": f"id-{name}", "file_unique_id": f"u-{name}", "file_size": 100, **fields}

    K = message_pb2.ContentKind
    cases = [
        # Photos come in several sizes, the largest last (but any order is read right).
        (update(photo=[file("p320", width=320, height=160), file("p90", width=90, height=45),
                       file("p1280", width=1280, height=640)], caption="foto"),
         (K.CONTENT_KIND_IMAGE, "id-p1280", "", "", "foto")),
        (update(document=file("d", mime_type="application/pdf", file_name="a.pdf")),
         (K.CONTENT_KIND_DOCUMENT, "id-d", "application/pdf", "a.pdf", "")),
        (update(video=file("v", mime_type="video/mp4", file_name="v.mp4", duration=3), caption="vídeo"),
         (K.CONTENT_KIND_VIDEO, "id-v", "video/mp4", "v.mp4", "vídeo")),
        (update(audio=file("a", mime_type="audio/mpeg", file_name="song.mp3", duration=3)),
         (K.CONTENT_KIND_AUDIO, "id-a", "audio/mpeg", "song.mp3", "")),
        (update(voice=file("o", mime_type="audio/ogg", duration=2)),
         (K.CONTENT_KIND_AUDIO, "id-o", "audio/ogg", "", "")),
        (update(video_note=file("n", length=240, duration=2)),
         (K.CONTENT_KIND_VIDEO, "id-n", "", "", "")),
        (update(sticker=file("s", type="regular", width=512, height=512, is_animated=False, is_video=False)),
         (K.CONTENT_KIND_STICKER, "id-s", "", "", "")),
        # An animation comes with a `document` too (for older clients): it is the animation.
        (update(animation=file("g", mime_type="video/mp4", file_name="dance.mp4"),
                document=file("g", mime_type="video/mp4", file_name="dance.mp4")),
         (K.CONTENT_KIND_VIDEO, "id-g", "video/mp4", "dance.mp4", "")),
    ]
    for raw, expected in cases:
        event, reason = telegram_updates.inbound_event(raw, "7000000001", time.time())
        assert event is not None, reason
        received = event.inbound_message_received
        [media] = received.media
        assert (media.kind, media.media_id, media.mime_type, media.filename, media.caption) == expected
        assert not received.content.HasField("text") and not media.url and not media.sha256
        assert telegram_updates.stated_size(raw) == 100

    event, reason = telegram_updates.inbound_event(update(location={"latitude": 1.0, "longitude": 2.0}), "1", 0.0)
    assert event is None and "without text or media" in reason
