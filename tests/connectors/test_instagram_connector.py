"""The Instagram Messaging connector against real parts: the Instagram emulator as a
process, the machine's Redis, a tansu broker, and the connector's gRPC server and
webhook server in-process through the runtime.

Every test uses an Instagram account id and a Redis prefix of its own, so its emulator
state (messages, limits per account, webhook queue, contacts) and its Redis keys (send
records, limits, reply windows, handled webhook ids) are its own; its inbound records are
the ones keyed by its account, its status events the ones keyed by its conversations.
The emulator's global settings (faults, limits, status policy, the webhook subscription)
are reset after every test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import re
import secrets
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiokafka.structs import ConsumerRecord
from chat4all.channel.v1 import channel_pb2
from chat4all.connector.v1 import message_pb2, request_response_pb2, service_pb2_grpc
from chat4all.conversations.v1 import message_pb2 as conversations_pb2
from chat4all.events.v1 import event_pb2
from chat4all.files.v1 import message_pb2 as files_pb2
from chat4all.messaging.v1 import message_pb2 as messaging_pb2
from prometheus_client import REGISTRY

from connectors.instagram import service as instagram_service
from connectors.instagram.settings import InstagramSettings
from connectors.sdk.inbound import event_id_for
from services.messaging import topics
from services.runtime import kafka
from services.runtime.status_details import retry_after_seconds
from tests.connectors.harness import (
    MetaEmulatorClient,
    PublishedRecords,
    collect_published,
    connector_settings,
    redis_namespace,
    rpc_error,
    running_meta_connector,
)
from tests.support.file_service import noise_png
from tests.support.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = f"IGAA-test-{secrets.token_hex(12)}"  # the only token the emulator accepts
APP_SECRET = "ig-test-app-secret"
VERIFY_TOKEN = "ig-test-verify-token"
WEBHOOK_PATH = "/instagram/webhook"
IMAGE_URL = "https://cdn.example.com/cat.png"  # not loopback: the emulator records it, never fetches it


def new_account() -> str:
    """An Instagram professional account id of this test (the emulator takes any numeric id)."""
    return f"1784{secrets.randbelow(9 * 10**12) + 10**12}"


def new_igsid() -> str:
    return str(secrets.randbelow(9 * 10**15) + 10**15)


# Emulator, Redis, Kafka -------------------------------------------------------------------


class Emulator(MetaEmulatorClient):
    """Its `call` takes paths under the emulator's own API (`requests`, `contacts/...`)."""

    control = ""
    access_token, app_secret, verify_token = TOKEN, APP_SECRET, VERIFY_TOKEN

    async def call(self, verb: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        return await super().call(verb, f"/_emulator/{path}", expect, **kwargs)

    async def requests(self, account: str) -> list[dict]:
        """The Send API calls made for the account, whatever their answer (not health probes)."""
        return (await self.call("GET", "requests", params={"ig_user_id": account, "path": "/messages"}))["requests"]

    async def messages(self, account: str) -> list[dict]:
        """The messages the emulator accepted from the account."""
        return (await self.call("GET", "messages", params={"ig_user_id": account}))["messages"]

    async def inject(self, account: str, user: str, text: str | None = "hi", **fields: Any) -> dict:
        """A user's message to the account, as Meta's signed webhook (it also opens the emulator's window)."""
        body = {"ig_user_id": account, "from": user, **({"text": text} if text is not None else {}), **fields}
        return await self.call("POST", "inbound", json=body)

    async def deliveries(self, mid: str, count: int, kind: str | None = None) -> list[dict]:
        """The webhook attempts for `mid`, once `count` of them were answered 200 (the emulator records
        an attempt when our answer reached it, which is after the connector handled the webhook)."""
        params = {"mid": mid, **({"kind": kind} if kind else {})}
        async with asyncio.timeout(10):
            while True:
                attempts = (await self.call("GET", "webhook-deliveries", params=params))["deliveries"]
                if sum(attempt["http_status"] == 200 for attempt in attempts) >= count:
                    return attempts
                await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
async def emulator(log_dir):
    async with Emulator.running_platform(log_dir, "instagram", "--seed", "11", "--webhook-max-attempts", "3",
                                         cwd=REPO_ROOT, start_timeout=20) as emulator:
        yield emulator


@pytest.fixture
async def instagram(emulator):
    """The emulator, back to its start settings after the test (faults, limits, status policy,
    subscription, pending webhooks)."""
    try:
        yield emulator
    finally:
        await emulator.call("POST", "reset", json={"subscription": True})


@pytest.fixture
async def redis_prefix():
    """A key prefix of this test; every key under it is deleted afterwards."""
    async with redis_namespace("instagram", InstagramSettings) as (_, prefix):
        yield prefix


class Records(PublishedRecords):
    """What arrives on chat4all.inbound.v1 (by account: the key's middle part) and on
    chat4all.messages.v1 (by key: the conversation) while the module runs."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: dict[str, list[ConsumerRecord]] = defaultdict(list)

    def take(self, record: ConsumerRecord) -> None:
        if record.topic == topics.INBOUND:
            super().take(record)
        else:
            self.messages[(record.key or b"").decode()].append(record)

    def statuses(self, conversation_id: str) -> list[event_pb2.Event]:
        return [kafka.decode(record, event_pb2.Event) for record in self.messages[conversation_id]]

    async def wait_for_inbound(self, account: str, mid: str) -> list[event_pb2.Event]:
        """The account's inbound events, once the one for `mid` is among them."""
        await self.wait_until(lambda: mid in external_ids(self.events(account)))
        return self.events(account)

    async def wait_for_statuses(self, conversation_id: str, count: int) -> list[event_pb2.Event]:
        await self.wait_until(lambda: len(self.messages[conversation_id]) >= count)
        return self.statuses(conversation_id)


def external_ids(events: list[event_pb2.Event]) -> list[str]:
    return [event.inbound_message_received.external_message_id for event in events]


@pytest.fixture(scope="module")
async def records(kafka_bootstrap):
    async with collect_published(Records(), kafka_bootstrap, InstagramSettings,
                                 topics.INBOUND, topics.MESSAGES) as found:
        yield found


# The connector ------------------------------------------------------------------------------


@dataclasses.dataclass
class Connector:
    stub: service_pb2_grpc.MessageConnectorStub
    settings: InstagramSettings
    account: str
    webhook_url: str


@contextlib.asynccontextmanager
async def connector(emulator: Emulator, redis_prefix: str, kafka_bootstrap: str, account: str, *,
                    subscribe: bool = True, **overrides: Any):
    """The connector for `account`, its webhook subscribed in the emulator (Meta's handshake) unless told not to."""
    values = dict(
        connector_webhook_port=free_port(),
        instagram_api_url=emulator.url,
        instagram_account_id=account,
        instagram_access_token=TOKEN,
        instagram_app_secret=APP_SECRET,
        instagram_verify_token=VERIFY_TOKEN,
        instagram_webhook_path=WEBHOOK_PATH,
    )
    settings = connector_settings(InstagramSettings, "instagram", kafka_bootstrap, redis_prefix,
                                  **{**values, **overrides})
    async with running_meta_connector(settings, instagram_service.setup, emulator, WEBHOOK_PATH,
                                      subscribe) as (stub, webhook_url):
        yield Connector(stub, settings, account, webhook_url)


async def open_window(emulator: Emulator, account: str, user: str, text: str = "hi") -> dict:
    """The user writes to the account; returns once the connector handled that webhook (its
    reply window open in Redis)."""
    injected = await emulator.inject(account, user, text)
    await emulator.deliveries(injected["mid"], 1)
    return injected


def send_request(account: str, user: str, text: str | None = "hello", *, attachments: tuple[dict, ...] = (),
                 conversation_id: str | None = None, **fields: Any) -> request_response_pb2.SendMessageRequest:
    content = messaging_pb2.MessageContent(text=text) if text is not None else messaging_pb2.MessageContent()
    for attachment in attachments:
        content.attachments.add(**attachment)
    return request_response_pb2.SendMessageRequest(
        message_id=str(uuid.uuid4()),
        conversation_id=conversation_id or str(uuid.uuid4()),
        account_id=account,
        recipient=messaging_pb2.Recipient(user_id=str(uuid.uuid4()), channel=channel_pb2.CHANNEL_INSTAGRAM,
                                          external_id=user),
        content=content,
        attempt=1,
        **fields,
    )


def attachment(content_type: str, url: str = IMAGE_URL, **fields: Any) -> dict:
    return {"file_id": f"file-{uuid.uuid4().hex[:8]}", "content_type": content_type, "download_url": url,
            "size_bytes": 1024, "filename": "f", **fields}


def media_request(account: str, user: str, content_type: str,
                  url: str = IMAGE_URL) -> request_response_pb2.SendMessageRequest:
    return send_request(account, user, None, attachments=(attachment(content_type, url),))


async def send_all(stub, requests) -> list:
    """Each request in turn: its answer, or the error it got."""
    answers = []
    for request in requests:
        try:
            answers.append(await stub.SendMessage(request))
        except grpc.aio.AioRpcError as error:
            answers.append(error)
    return answers


def inbound_count(kind: str, outcome: str) -> float:
    return REGISTRY.get_sample_value(
        "chat4all_connector_inbound_total", {"connector": "instagram", "kind": kind, "outcome": outcome}) or 0.0


def circuit_gauge(account: str) -> float | None:
    return REGISTRY.get_sample_value("chat4all_connector_circuit_state", {"connector": "instagram", "account": account})


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


# Sending ------------------------------------------------------------------------------------


async def test_sends_reach_the_send_api_in_its_exact_shape_and_answer_with_the_mid(instagram, redis_prefix,
                                                                                   kafka_bootstrap):
    account, user = new_account(), new_igsid()
    async with connector(instagram, redis_prefix, kafka_bootstrap, account) as ig:
        await open_window(instagram, account, user)
        assert await instagram.requests(account) == []

        request = send_request(account, user, "olá from Chat4All ☕")
        before = time.time()
        reply = await ig.stub.SendMessage(request)
        [call] = await instagram.requests(account)
        assert call["method"] == "POST"
        assert call["path"] == f"/v21.0/{account}/messages"
        assert call["body"] == {"recipient": {"id": user}, "message": {"text": "olá from Chat4All ☕"}}
        # The emulator accepts only TOKEN (anything else is 401) and records the header redacted.
        assert call["headers"]["Authorization"] == "Bearer [redacted]"
        assert call["headers"]["Content-Type"].startswith("application/json")
        assert call["status"] == 200 and call["ig_user_id"] == account
        [sent] = await instagram.messages(account)
        assert sent["mid"].startswith("aWdf")  # a real-looking Instagram mid
        assert reply.platform_message_ids == [sent["mid"]]
        assert reply.status == messaging_pb2.DELIVERY_STATUS_SENT
        assert before - 1 <= reply.send_time.seconds <= time.time()

        # A repeat (the router retrying after a lost answer) is answered from the send record.
        assert await ig.stub.SendMessage(request) == reply
        assert len(await instagram.requests(account)) == 1

        # Every attachment kind, by URL: image, audio, video and file (documents).
        kinds = {"image/png": "image", "audio/mpeg": "audio", "video/mp4": "video", "application/pdf": "file"}
        for content_type, kind in kinds.items():
            url = f"https://cdn.example.com/{kind}/{uuid.uuid4().hex}"
            reply = await ig.stub.SendMessage(media_request(account, user, content_type, url))
            call = (await instagram.requests(account))[-1]
            assert call["path"] == f"/v21.0/{account}/messages"
            assert call["body"] == {"recipient": {"id": user},
                                    "message": {"attachment": {"type": kind, "payload": {"url": url}}}}
            assert call["status"] == 200 and call["headers"]["Authorization"] == "Bearer [redacted]"
            sent = (await instagram.messages(account))[-1]
            assert (sent["type"], reply.platform_message_ids) == (kind, [sent["mid"]])

        # Text with a file: Instagram has no captions, so two messages, the text first.
        both = send_request(account, user, "see the photo", attachments=(attachment("image/jpeg"),))
        reply = await ig.stub.SendMessage(both)
        text_call, file_call = (await instagram.requests(account))[-2:]
        assert text_call["body"] == {"recipient": {"id": user}, "message": {"text": "see the photo"}}
        assert file_call["body"] == {"recipient": {"id": user},
                                     "message": {"attachment": {"type": "image", "payload": {"url": IMAGE_URL}}}}
        assert reply.platform_message_ids == [m["mid"] for m in (await instagram.messages(account))[-2:]]
        assert len(await instagram.requests(account)) == 7


async def test_refused_before_any_platform_call_outside_the_reply_window_or_when_invalid(instagram, redis_prefix,
                                                                                        kafka_bootstrap):
    account, user, stranger = new_account(), new_igsid(), new_igsid()
    async with connector(instagram, redis_prefix, kafka_bootstrap, account) as ig:
        # Nobody wrote to us: no reply is allowed, and Instagram is not asked.
        closed = await rpc_error(ig.stub.SendMessage(send_request(account, user, "cold message")))
        assert closed.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"{user} has not written to this account in the last 24 hours" in closed.details()

        # A message from 25 hours ago (a late redelivery) does not open it.
        old = await instagram.inject(account, user, "yesterday", timestamp=int((time.time() - 25 * 3600) * 1000))
        await instagram.deliveries(old["mid"], 1)
        late = await rpc_error(ig.stub.SendMessage(send_request(account, user, "still cold")))
        assert late.code() == grpc.StatusCode.FAILED_PRECONDITION

        # Requests that can never go, whatever the window.
        big = attachment("image/jpeg", size_bytes=8 * 1024 * 1024 + 1)
        no_url = attachment("video/mp4", url="")
        template = send_request(account, user, None)
        template.content.template.name = "order_update"
        wrong_channel = send_request(account, user)
        wrong_channel.recipient.channel = channel_pb2.CHANNEL_WHATSAPP
        invalid = [
            (send_request(account, "not-an-igsid"), grpc.StatusCode.INVALID_ARGUMENT),
            (template, grpc.StatusCode.INVALID_ARGUMENT),
            (send_request(account, user, "x" * 1001), grpc.StatusCode.INVALID_ARGUMENT),
            (send_request(account, user, "   "), grpc.StatusCode.INVALID_ARGUMENT),
            (wrong_channel, grpc.StatusCode.INVALID_ARGUMENT),
            (send_request(account, user, None, attachments=(big,)), grpc.StatusCode.FAILED_PRECONDITION),
            (send_request(account, user, None, attachments=(no_url,)), grpc.StatusCode.FAILED_PRECONDITION),
            (send_request(new_account(), user), grpc.StatusCode.NOT_FOUND),
        ]
        for request, code in invalid:
            assert (await rpc_error(ig.stub.SendMessage(request))).code() == code, request
        assert await instagram.requests(account) == []

        # The user writes now: the window opens for that user only.
        await open_window(instagram, account, user, "hello?")
        reply = await ig.stub.SendMessage(send_request(account, user, "now we can talk"))
        assert len(reply.platform_message_ids) == 1
        other = await rpc_error(ig.stub.SendMessage(send_request(account, stranger, "and you?")))
        assert other.code() == grpc.StatusCode.FAILED_PRECONDITION
        [call] = await instagram.requests(account)
        assert call["body"]["message"] == {"text": "now we can talk"}


async def test_instagrams_refusals_map_to_the_contracts_codes(instagram, redis_prefix, kafka_bootstrap):
    account, user = new_account(), new_igsid()
    async with connector(instagram, redis_prefix, kafka_bootstrap, account) as ig:
        await open_window(instagram, account, user)
        # A user who cannot be messaged now (551): permanent for this message.
        await instagram.call("PATCH", f"contacts/{account}/{user}", json={"available": False})
        unavailable = await rpc_error(ig.stub.SendMessage(send_request(account, user)))
        assert unavailable.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "(551/1545041)" in unavailable.details()
        await instagram.call("PATCH", f"contacts/{account}/{user}", json={"available": True})

        # Instagram's own window says closed (10 / 2018278): permanent too.
        await instagram.call("PATCH", f"contacts/{account}/{user}", json={"last_inbound_time": None})
        outside = await rpc_error(ig.stub.SendMessage(send_request(account, user)))
        assert outside.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "(10/2018278)" in outside.details()
        await instagram.call("PATCH", f"contacts/{account}/{user}", json={"last_inbound_time": time.time()})

        # A 500: transient, and not recorded, so the router's retry goes out.
        await instagram.call("PUT", "faults", json={"fail_next": 1})
        request = send_request(account, user, "retry me")
        failed = await rpc_error(ig.stub.SendMessage(request))
        assert failed.code() == grpc.StatusCode.UNAVAILABLE
        assert retry_after_seconds(failed) is None
        assert len((await ig.stub.SendMessage(request)).platform_message_ids) == 1
        statuses = [call["status"] for call in await instagram.requests(account)]
        assert statuses == [400, 400, 500, 200]

    # A token Instagram rejects: UNAUTHENTICATED (an operator fixes it), and never in the message.
    async with connector(instagram, redis_prefix, kafka_bootstrap, account,
                         instagram_access_token="IGAA-revoked-token") as ig:
        rejected = await rpc_error(ig.stub.SendMessage(send_request(account, user)))
        assert rejected.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "(190)" in rejected.details() and "IGAA-revoked-token" not in rejected.details()
        assert (await instagram.requests(account))[-1]["status"] == 401


# Inbound: the webhook -----------------------------------------------------------------------


async def test_the_webhook_handshake_answers_the_challenge_only_with_our_verify_token(instagram, redis_prefix,
                                                                                     kafka_bootstrap):
    account = new_account()
    async with connector(instagram, redis_prefix, kafka_bootstrap, account, subscribe=False) as ig:
        async with aiohttp.ClientSession() as http:
            right = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN}
            async with http.get(ig.webhook_url, params=right) as response:
                assert response.status == 200
                assert await response.text() == "1158201444"
            for wrong in ({**right, "hub.verify_token": "guess"}, {**right, "hub.verify_token": ""},
                          {k: v for k, v in right.items() if k != "hub.verify_token"},
                          {**right, "hub.mode": "unsubscribe"}):
                async with http.get(ig.webhook_url, params=wrong) as response:
                    assert response.status == 403
                    assert "1158201444" not in await response.text()

        # Meta's own handshake, run by the emulator: refused with another token, saved with ours.
        refused = await instagram.subscribe(ig.webhook_url, "not-our-token", expect=400)
        assert refused["handshake"]["http_status"] == 403
        assert (await instagram.call("GET", "subscription"))["subscription"] is None
        subscribed = await instagram.subscribe(ig.webhook_url)
        assert subscribed["handshake"]["ok"] is True
        assert subscribed["subscription"]["callback_url"] == ig.webhook_url


async def test_only_signed_webhooks_are_published_and_each_message_once(instagram, redis_prefix, kafka_bootstrap,
                                                                        records):
    account, user = new_account(), new_igsid()
    async with connector(instagram, redis_prefix, kafka_bootstrap, account) as ig:
        # Forged: no signature, then a wrong one. Refused, and nothing is published for them.
        refused_before = inbound_count("webhook", "unauthorized")
        forged_mid = f"aWdf-forged-{uuid.uuid4().hex}"
        envelope = {"object": "instagram", "entry": [{"time": int(time.time() * 1000), "id": account, "messaging": [
            {"sender": {"id": user}, "recipient": {"id": account}, "timestamp": int(time.time() * 1000),
             "message": {"mid": forged_mid, "text": "forged"}}]}]}
        raw = json.dumps(envelope).encode()
        async with aiohttp.ClientSession() as http:
            async with http.post(ig.webhook_url, data=raw, headers={"Content-Type": "application/json"}) as response:
                assert response.status == 401
            # The legacy SHA-1 header alone is not enough either.
            sha1 = "sha1=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha1).hexdigest()
            async with http.post(ig.webhook_url, data=raw, headers={"X-Hub-Signature": sha1}) as response:
                assert response.status == 401
            for headers in (signed(raw, "another-app-secret"), {"X-Hub-Signature-256": "sha256=" + "0" * 64},
                            signed(raw + b" ")):
                async with http.post(ig.webhook_url, data=raw, headers=headers) as response:
                    assert response.status == 403
        assert inbound_count("webhook", "unauthorized") == refused_before + 5

        # Meta's webhook, signed by the emulator: published, and only once though delivered twice.
        timestamp = int(time.time() * 1000) - 1500
        injected = await instagram.inject(account, user, "oi, tudo bem?", timestamp=timestamp, duplicate=1)
        attempts = await instagram.deliveries(injected["mid"], 2)
        assert [attempt["http_status"] for attempt in attempts] == [200, 200]
        assert attempts[0]["signature"] == signed(injected["raw"].encode())["X-Hub-Signature-256"]
        # Attachments only, on a CDN nobody answers (kept as references); then what the connector cannot carry (a shared post).
        with_media = await instagram.inject(account, user, None, attachments=[
            {"type": "image", "url": "http://127.0.0.1:9/cdn/in.jpg"},
            {"type": "audio", "url": "http://127.0.0.1:9/cdn/in.m4a"}])
        await instagram.inject(account, user, None, attachments=[{"type": "share", "url": "https://ig.example/p/1"}])
        # Last, from the same user (the same partition): once it is there, so is all that came before.
        sentinel = await instagram.inject(account, user, "last")
        events = await records.wait_for_inbound(account, sentinel["mid"])

        assert external_ids(events) == [injected["mid"], with_media["mid"], sentinel["mid"]]
        assert forged_mid not in external_ids(events)
        assert set(records.keys(account)) == {f"{channel_pb2.CHANNEL_INSTAGRAM}:{account}:{user}".encode()}
        event = events[0]
        assert event.WhichOneof("payload") == "inbound_message_received"
        assert event.event_id == event_id_for("instagram-message", account, injected["mid"])
        assert uuid.UUID(event.event_id).version == 4
        received = event.inbound_message_received
        assert received.channel == channel_pb2.CHANNEL_INSTAGRAM
        assert received.account_id == account
        assert received.external_sender_id == user and received.external_chat_id == user
        assert received.external_message_id == injected["mid"]
        assert received.chat_type == conversations_pb2.CONVERSATION_TYPE_DIRECT
        assert received.content == messaging_pb2.MessageContent(text="oi, tudo bem?")
        assert abs(received.platform_time.ToMilliseconds() - timestamp) <= 1  # ms -> float seconds -> ns
        assert event.occur_time == received.platform_time
        assert received.receive_time.ToMilliseconds() >= timestamp
        media = events[1].inbound_message_received
        assert not media.content.text
        assert [(m.kind, m.url) for m in media.media] == [
            (message_pb2.CONTENT_KIND_IMAGE, "http://127.0.0.1:9/cdn/in.jpg"),
            (message_pb2.CONTENT_KIND_AUDIO, "http://127.0.0.1:9/cdn/in.m4a")]


def media_imports(outcome: str) -> float:
    return REGISTRY.get_sample_value("chat4all_connector_media_imports_total",
                                     {"connector": "instagram", "outcome": outcome}) or 0.0


async def test_attachments_are_imported_into_the_file_service_and_one_it_cannot_fetch_stays_its_url(
        instagram, redis_prefix, kafka_bootstrap, records, file_service):
    account, user = new_account(), new_igsid()
    photo = noise_png(256, 256)
    document = b"%PDF-1.4\n" + os.urandom(6 * 1024 * 1024 + 77)  # two parts of the file service's 5 MiB
    # A CDN URL whose signature expired: Instagram answers 403.
    expired = f"{instagram.url}/ig_messaging_cdn/?asset_id=1{secrets.randbelow(10**15)}&signature=expired"
    imported_before, failed_before = media_imports("imported"), media_imports("download_failed")
    async with connector(instagram, redis_prefix, kafka_bootstrap, account, files_target=file_service.target):
        injected = await instagram.inject(account, user, "veja 👀", attachments=[
            {"type": "image", "bytes_b64": base64.b64encode(photo).decode(), "mime_type": "image/png"},
            {"type": "video", "url": expired},
            {"type": "file", "bytes_b64": base64.b64encode(document).decode(), "mime_type": "application/pdf"}])
        events = await records.wait_for_inbound(account, injected["mid"])

    received = events[-1].inbound_message_received
    assert received.external_message_id == injected["mid"]
    assert received.content.text == "veja 👀"
    # Imported, in the order sent; the one Instagram would not serve is published as its URL.
    image, pdf = received.content.attachments
    assert [(m.kind, m.url) for m in received.media] == [(message_pb2.CONTENT_KIND_VIDEO, expired)]
    for attachment, data, content_type, name in ((image, photo, "image/png", r"image-[0-9a-f]{16}\.png"),
                                                 (pdf, document, "application/pdf", r"document-[0-9a-f]{16}\.pdf")):
        assert attachment.caption == "" and re.fullmatch(name, attachment.filename), attachment
        file = await file_service.file(attachment.file_id)
        assert (file.sha256, file.size_bytes) == (hashlib.sha256(data).hexdigest(), len(data))
        assert (file.filename, file.declared_content_type) == (attachment.filename, content_type)
        assert file.state != files_pb2.FILE_STATE_UPLOADING and file.owner_user_id == ""
        assert await file_service.stored_bytes(attachment.file_id) == data
        assert await file_service.files_with_sha256(file.sha256) == 1
    assert media_imports("imported") == imported_before + 2
    assert media_imports("download_failed") == failed_before + 1


async def test_echoes_of_our_own_sends_are_not_published(instagram, redis_prefix, kafka_bootstrap, records):
    account, user = new_account(), new_igsid()
    async with connector(instagram, redis_prefix, kafka_bootstrap, account) as ig:
        opened = await open_window(instagram, account, user)
        ignored_before = inbound_count("echo", "ignored")
        # Meta echoes every message the account sends (is_echo), here twice each.
        await instagram.call("PATCH", "status-policy", json={"echo": True, "duplicate": True, "delay_ms": 0})
        text = await ig.stub.SendMessage(send_request(account, user, "our reply"))
        photo = await ig.stub.SendMessage(media_request(account, user, "image/png"))
        for reply in (text, photo):
            [mid] = reply.platform_message_ids
            echoes = await instagram.deliveries(mid, 2, kind="echo")
            assert [attempt["http_status"] for attempt in echoes] == [200, 200]
            assert json.loads(echoes[0]["body"])["entry"][0]["messaging"][0]["message"]["is_echo"] is True
        assert inbound_count("echo", "ignored") == ignored_before + 4

        sentinel = await instagram.inject(account, user, "thanks")
        events = await records.wait_for_inbound(account, sentinel["mid"])
        assert external_ids(events) == [opened["mid"], sentinel["mid"]]
        # An echo's sender is our account: a published echo would be keyed by it.
        assert set(records.keys(account)) == {f"{channel_pb2.CHANNEL_INSTAGRAM}:{account}:{user}".encode()}


async def test_read_receipts_become_read_status_changes_once_each(instagram, redis_prefix, kafka_bootstrap, records):
    account, user = new_account(), new_igsid()
    conversation = str(uuid.uuid4())
    async with connector(instagram, redis_prefix, kafka_bootstrap, account) as ig:
        await open_window(instagram, account, user)
        request = send_request(account, user, "did you see this?", conversation_id=conversation)
        [mid] = (await ig.stub.SendMessage(request)).platform_message_ids

        # The user reads it; Meta delivers the receipt twice.
        read = await instagram.call("POST", "reads", json={"mid": mid, "duplicate": 1})
        read_at = read["body"]["entry"][0]["messaging"][0]["timestamp"]
        assert [a["http_status"] for a in await instagram.deliveries(mid, 2, kind="read")] == [200, 200]

        # Read by policy: the emulator sends a receipt after the next send (same conversation,
        # so its event comes after the first one's on the same partition).
        await instagram.call("PATCH", "status-policy", json={"auto_read": True, "echo": False, "delay_ms": 10})
        second = send_request(account, user, "and this?", conversation_id=conversation)
        [second_mid] = (await ig.stub.SendMessage(second)).platform_message_ids
        await instagram.deliveries(second_mid, 1, kind="read")
        events = await records.wait_for_statuses(conversation, 2)

    assert len(events) == 2
    first, then = events
    assert first.WhichOneof("payload") == "delivery_status_changed"
    assert first.conversation_id == conversation
    assert first.event_id == event_id_for("status", "instagram", mid, "DELIVERY_STATUS_READ")
    changed = first.delivery_status_changed
    assert changed.message_id == request.message_id
    assert changed.recipient == request.recipient
    assert changed.platform_message_id == mid
    assert changed.change.status == messaging_pb2.DELIVERY_STATUS_READ
    assert abs(changed.change.change_time.ToMilliseconds() - read_at) <= 1
    assert first.occur_time == changed.change.change_time
    assert changed.change.record_time.ToMilliseconds() >= read_at - 1
    assert then.delivery_status_changed.message_id == second.message_id
    assert then.delivery_status_changed.platform_message_id == second_mid
    assert then.delivery_status_changed.change.status == messaging_pb2.DELIVERY_STATUS_READ


# Limits -------------------------------------------------------------------------------------


async def test_the_text_limit_refuses_a_burst_before_instagram_with_the_wait(instagram, redis_prefix, kafka_bootstrap):
    account, user = new_account(), new_igsid()
    limits = dict(instagram_text_per_second=2.0, instagram_text_burst=3)
    async with connector(instagram, redis_prefix, kafka_bootstrap, account, **limits) as ig:
        await open_window(instagram, account, user)
        answers = await send_all(ig.stub, [send_request(account, user, f"burst {i}") for i in range(6)])
        accepted = [a for a in answers if isinstance(a, request_response_pb2.SendMessageResponse)]
        refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
        assert len(accepted) == 3 and answers[:3] == accepted
        assert [error.code() for error in refused] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 3
        for error in refused:
            assert "the text send limit is full" in error.details()
            assert 0 < retry_after_seconds(error) <= 0.5
        sent = await instagram.requests(account)
        assert [call["body"]["message"]["text"] for call in sent] == ["burst 0", "burst 1", "burst 2"]

        # The wait it gave is the real one.
        await asyncio.sleep(retry_after_seconds(refused[-1]))
        await ig.stub.SendMessage(send_request(account, user, "after the wait"))
        assert len(await instagram.requests(account)) == 4


async def test_audio_and_video_count_against_the_media_limit_without_blocking_text(instagram, redis_prefix,
                                                                                  kafka_bootstrap):
    account, user = new_account(), new_igsid()
    limits = dict(instagram_media_per_second=1.0, instagram_media_burst=1)
    async with connector(instagram, redis_prefix, kafka_bootstrap, account, **limits) as ig:
        await open_window(instagram, account, user)
        await ig.stub.SendMessage(media_request(account, user, "audio/ogg"))
        full = await rpc_error(ig.stub.SendMessage(media_request(account, user, "video/mp4")))
        assert full.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "the media send limit is full" in full.details()
        assert 0 < retry_after_seconds(full) <= 1.0
        # Text, images and files are not audio or video: the full media bucket does not hold them.
        await ig.stub.SendMessage(send_request(account, user, "text goes"))
        await ig.stub.SendMessage(media_request(account, user, "image/png"))
        await ig.stub.SendMessage(media_request(account, user, "application/pdf"))
        assert [m["type"] for m in await instagram.messages(account)] == ["audio", "text", "image", "file"]

        await asyncio.sleep(retry_after_seconds(full))
        await ig.stub.SendMessage(media_request(account, user, "video/mp4"))
        assert [call["status"] for call in await instagram.requests(account)] == [200] * 5
        assert (await instagram.messages(account))[-1]["type"] == "video"


async def test_instagrams_throttling_answers_resource_exhausted_and_holds_that_limit(instagram, redis_prefix,
                                                                                    kafka_bootstrap):
    account, user = new_account(), new_igsid()
    async with connector(instagram, redis_prefix, kafka_bootstrap, account) as ig:
        await open_window(instagram, account, user)
        # Instagram's own audio/video limit (code 613, no Retry-After: Meta's suggested 60 s).
        await instagram.call("PATCH", "limits", json={"av_per_s": 0.1, "av_burst": 1})
        await ig.stub.SendMessage(media_request(account, user, "audio/mpeg"))
        throttled = await rpc_error(ig.stub.SendMessage(media_request(account, user, "video/mp4")))
        assert throttled.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "(613)" in throttled.details()
        assert retry_after_seconds(throttled) == 60
        assert [call["status"] for call in await instagram.requests(account)] == [200, 429]
        # Held for every replica: the next audio is refused without asking Instagram...
        held = await rpc_error(ig.stub.SendMessage(media_request(account, user, "audio/mpeg")))
        assert held.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "media" in held.details()
        assert 59 < retry_after_seconds(held) <= 60.2
        # ...while text and images, which Instagram limits separately, still go.
        await ig.stub.SendMessage(send_request(account, user, "text is not held"))
        await ig.stub.SendMessage(media_request(account, user, "image/png"))
        assert [call["status"] for call in await instagram.requests(account)] == [200, 429, 200, 200]

        # A rate error on a text send, with Retry-After: that wait, and the text limit held for it.
        await instagram.call("PUT", "faults", json={"fail_next_429": 1, "retry_after": 1})
        limited = await rpc_error(ig.stub.SendMessage(send_request(account, user, "too fast")))
        assert limited.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "(613)" in limited.details()
        assert retry_after_seconds(limited) == 1
        held = await rpc_error(ig.stub.SendMessage(send_request(account, user, "still too fast")))
        assert held.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "text" in held.details()
        assert "613" not in held.details()
        assert 0.5 < retry_after_seconds(held) <= 1 + 1 / 300 + 0.01
        assert len(await instagram.requests(account)) == 5

        await asyncio.sleep(retry_after_seconds(held))
        await ig.stub.SendMessage(send_request(account, user, "after the wait"))
        assert [call["status"] for call in await instagram.requests(account)] == [200, 429, 200, 200, 429, 200]


# Circuit breaker ----------------------------------------------------------------------------


async def test_the_circuit_opens_after_three_5xx_fails_fast_and_closes_when_instagram_recovers(
        instagram, redis_prefix, kafka_bootstrap):
    account, user = new_account(), new_igsid()
    breaker = dict(connector_breaker_failure_threshold=3, connector_breaker_open_seconds=1.0,
                   connector_breaker_max_open_seconds=2.0)
    async with connector(instagram, redis_prefix, kafka_bootstrap, account, **breaker) as ig:
        await open_window(instagram, account, user)
        await instagram.call("PUT", "faults", json={"error_rate": 1.0, "error_status": 503})
        failures = await send_all(ig.stub, [send_request(account, user, f"down {i}") for i in range(3)])
        assert [error.code() for error in failures] == [grpc.StatusCode.UNAVAILABLE] * 3
        assert all("Service temporarily unavailable" in error.details() for error in failures)
        # Two transient failures; the third opens the circuit and says when to come back.
        assert [retry_after_seconds(error) for error in failures[:2]] == [None, None]
        assert 0.5 < retry_after_seconds(failures[2]) <= 1.0
        assert circuit_gauge(account) == 1

        # Open: answered at once, with the wait, without calling Instagram.
        fast = await rpc_error(ig.stub.SendMessage(send_request(account, user, "fast")))
        assert fast.code() == grpc.StatusCode.UNAVAILABLE
        assert "circuit" in fast.details()
        assert 0 < retry_after_seconds(fast) <= 1.0
        assert [call["status"] for call in await instagram.requests(account)] == [503] * 3
        health = await ig.stub.CheckHealth(request_response_pb2.CheckHealthRequest(account_id=account))
        assert health.circuit_state == message_pb2.CIRCUIT_STATE_OPEN
        assert health.circuit_retry_time.ToNanoseconds() > 0

        # After the wait one probe goes through; Instagram still fails: open again, twice as long.
        await asyncio.sleep(retry_after_seconds(fast))
        probe = await rpc_error(ig.stub.SendMessage(send_request(account, user, "probe")))
        assert probe.code() == grpc.StatusCode.UNAVAILABLE and "Service temporarily unavailable" in probe.details()
        assert 1.0 < retry_after_seconds(probe) <= 2.0
        assert circuit_gauge(account) == 1
        assert len(await instagram.requests(account)) == 4

        # Instagram recovers: the next probe succeeds and closes the circuit.
        await instagram.call("DELETE", "faults")
        await asyncio.sleep(retry_after_seconds(probe))
        reply = await ig.stub.SendMessage(send_request(account, user, "back"))
        assert len(reply.platform_message_ids) == 1
        await ig.stub.SendMessage(send_request(account, user, "and again"))
        assert [call["status"] for call in await instagram.requests(account)] == [503] * 4 + [200, 200]
        assert circuit_gauge(account) == 0
        health = await ig.stub.CheckHealth(request_response_pb2.CheckHealthRequest(account_id=account))
        assert health.circuit_state == message_pb2.CIRCUIT_STATE_CLOSED
