"""The WhatsApp Cloud API connector against real parts: the WhatsApp emulator as a
process, the machine's Redis, a tansu broker, and the connector's gRPC server
in-process through the runtime.

Every test uses a business phone_number_id of its own (the emulator takes any
numeric id), so its emulator state (messages, contacts and their windows,
limits, webhook queue) and its Redis keys (under a prefix of its own) are its
own; its inbound records are the ones keyed by its number, its status events
the ones keyed by its conversations. The emulator has one webhook subscription:
each connector subscribes it to its own webhook (Meta's handshake) while it runs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from collections import defaultdict
from typing import Any

import aiohttp
import grpc
import pytest
from chat4all.channel.v1 import channel_pb2
from chat4all.connector.v1 import message_pb2, request_response_pb2
from chat4all.conversations.v1 import message_pb2 as conversations_pb2
from chat4all.events.v1 import event_pb2
from chat4all.files.v1 import message_pb2 as files_pb2
from chat4all.messaging.v1 import message_pb2 as messaging_pb2
from prometheus_client import REGISTRY

from connectors.whatsapp import service as whatsapp_service
from connectors.whatsapp.settings import WhatsAppSettings
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

# The emulator's credentials (not its defaults: the connector must use the ones it is given).
ACCESS_TOKEN = "EAAG-test-system-user-token"
APP_SECRET = "test-app-secret-5b1f"
VERIFY_TOKEN = "test-verify-token-9c2e"
WEBHOOK_PATH = "/whatsapp/webhook"
API_VERSION = "v21.0"
WHATSAPP = channel_pb2.CHANNEL_WHATSAPP
S = messaging_pb2.DeliveryStatus
HELLO = "olá, tudo bem? 👋 https://chat4all.example/ajuda"
REENGAGEMENT = ("Re-engagement message: Message failed to send because more than 24 hours have passed since the "
                "customer last replied to this number.")


def new_phone_number_id() -> str:
    return str(secrets.randbelow(9 * 10**14) + 10**14)


def new_wa_id() -> str:
    return f"55119{secrets.randbelow(10**8):08d}"


# Emulator, Redis, Kafka -------------------------------------------------------------------


class Emulator(MetaEmulatorClient):
    access_token, app_secret, verify_token = ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN

    async def requests(self, phone_number_id: str) -> list[dict]:
        """Every Graph API request that names the number in its path (sends, and anything else)."""
        return (await self.call("GET", "/_emulator/requests", params={"path": f"/{phone_number_id}"}))["requests"]

    async def sends(self, phone_number_id: str) -> list[dict]:
        return (await self.call("GET", "/_emulator/requests",
                                params={"path": f"/{API_VERSION}/{phone_number_id}/messages"}))["requests"]

    async def messages(self, phone_number_id: str) -> list[dict]:
        return (await self.call("GET", "/_emulator/messages", params={"phone_number_id": phone_number_id}))["messages"]

    async def inject(self, phone_number_id: str, sender: str, text: str, **fields: Any) -> dict:
        """A user's message to the number: the emulator delivers it to the subscribed webhook, signed."""
        body = {"phone_number_id": phone_number_id, "from": sender, "type": "text", "text": text, **fields}
        return await self.call("POST", "/_emulator/inbound", json=body)

    async def inject_media(self, phone_number_id: str, sender: str, kind: str, media: dict, **fields: Any) -> dict:
        """A user's image, document... (`media`: bytes_b64, mime_type, caption, filename): the emulator
        keeps the bytes under a new media id and sends the webhook naming it."""
        return await self.call("POST", "/_emulator/inbound", json={
            "phone_number_id": phone_number_id, "from": sender, "type": kind, "media": media, **fields})

    async def gone_media_id(self, phone_number_id: str) -> str:
        """A media id WhatsApp issued and no longer has (deleted, or expired as webhook media do after 7 days)."""
        auth = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("file", b"\xff\xd8\xff", filename="old.jpg", content_type="image/jpeg")
        async with self.http.post(f"{self.url}/{API_VERSION}/{phone_number_id}/media", data=form, headers=auth) as response:
            media_id = (await response.json())["id"]
        async with self.http.delete(f"{self.url}/{API_VERSION}/{media_id}", headers=auth) as response:
            assert response.status == 200, await response.text()
        return media_id

    async def webhook_deliveries(self, phone_number_id: str, count: int, **filters: str) -> list[dict]:
        """The webhook attempts matching `filters`, once `count` were made (the emulator records an
        attempt when our answer reached it, which is after we published)."""
        params = {"phone_number_id": phone_number_id, **filters}
        async with asyncio.timeout(10):
            while True:
                found = (await self.call("GET", "/_emulator/webhook-deliveries", params=params))["deliveries"]
                if len(found) >= count:
                    return found
                await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
async def emulator(log_dir):
    async with Emulator.running_platform(log_dir, "whatsapp", "--seed", "7", "--webhook-max-attempts", "5") as emulator:
        yield emulator


@pytest.fixture
async def redis_prefix():
    """A key prefix of this test; every key under it is deleted afterwards."""
    async with redis_namespace("whatsapp", WhatsAppSettings) as (_, prefix):
        yield prefix


class Records(PublishedRecords):
    """What the connectors publish while the module runs: inbound messages by business number
    (the inbound key's middle part), delivery status changes by conversation (their key)."""

    def __init__(self) -> None:
        super().__init__(channel=WHATSAPP)
        self.statuses: dict[str, list[event_pb2.Event]] = defaultdict(list)

    def take(self, record) -> None:
        # Other producers' records may share the broker: only ours are kept.
        try:
            event = kafka.decode(record, event_pb2.Event)
        except Exception:
            return
        if record.topic == topics.INBOUND:
            account = self.inbound_account(record)
            if account is not None:
                self.inbound[account].append((record.key, event))
        elif event.WhichOneof("payload") == "delivery_status_changed":
            self.statuses[(record.key or b"").decode()].append(event)

    async def wait_for_text(self, phone_number_id: str, text: str, timeout: float = 15.0) -> list[event_pb2.Event]:
        await self.wait_until(lambda: text in texts(self.events(phone_number_id)), timeout)
        return self.events(phone_number_id)

    async def wait_for_message(self, phone_number_id: str, wamid: str, count: int = 1) -> list[event_pb2.Event]:
        """The number's inbound events for `wamid`, once `count` of them arrived."""
        def found() -> list[event_pb2.Event]:
            return [e for e in self.events(phone_number_id) if e.inbound_message_received.external_message_id == wamid]

        await self.wait_until(lambda: len(found()) >= count)
        return found()

    async def wait_for_statuses(self, conversation_id: str, count: int, timeout: float = 15.0) -> list[event_pb2.Event]:
        await self.wait_until(lambda: len(self.statuses[conversation_id]) >= count, timeout)
        return list(self.statuses[conversation_id])


def texts(events: list[event_pb2.Event]) -> list[str]:
    return [event.inbound_message_received.content.text for event in events]


def changes(events: list[event_pb2.Event]) -> list[tuple[str, int]]:
    return [(e.delivery_status_changed.message_id, e.delivery_status_changed.change.status) for e in events]


@pytest.fixture(scope="module")
async def published(kafka_bootstrap):
    async with collect_published(Records(), kafka_bootstrap, WhatsAppSettings,
                                 topics.INBOUND, topics.MESSAGES) as records:
        yield records


# The connector ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connector(emulator: Emulator, redis_prefix: str, kafka_bootstrap: str, phone_number_id: str,
                    *, subscribe: bool = True, **overrides: Any):
    """The connector for `phone_number_id`; with `subscribe`, the emulator's webhook subscription
    points at it (the emulator makes Meta's verification handshake first)."""
    values = dict(
        connector_webhook_port=free_port(),
        whatsapp_api_url=emulator.url,
        whatsapp_phone_number_id=phone_number_id,
        whatsapp_access_token=ACCESS_TOKEN,
        whatsapp_app_secret=APP_SECRET,
        whatsapp_verify_token=VERIFY_TOKEN,
    )
    settings = connector_settings(WhatsAppSettings, "whatsapp", kafka_bootstrap, redis_prefix,
                                  **{**values, **overrides})
    async with running_meta_connector(settings, whatsapp_service.setup, emulator, WEBHOOK_PATH, subscribe) as running:
        yield running


def send_request(phone_number_id: str, to: str, text: str | None = "hello", *,
                 template: messaging_pb2.Template | None = None,
                 attachments: tuple[messaging_pb2.Attachment, ...] = (),
                 conversation_id: str | None = None, message_id: str | None = None,
                 **fields: Any) -> request_response_pb2.SendMessageRequest:
    if template is not None:
        content = messaging_pb2.MessageContent(template=template, attachments=attachments)
    elif text is not None:
        content = messaging_pb2.MessageContent(text=text, attachments=attachments)
    else:
        content = messaging_pb2.MessageContent(attachments=attachments)
    return request_response_pb2.SendMessageRequest(
        message_id=message_id or str(uuid.uuid4()),
        conversation_id=conversation_id or str(uuid.uuid4()),
        account_id=phone_number_id,
        recipient=messaging_pb2.Recipient(user_id=str(uuid.uuid4()), channel=WHATSAPP, external_id=to),
        content=content,
        attempt=1,
        **fields,
    )


def template_request(phone_number_id: str, to: str, **fields: Any) -> request_response_pb2.SendMessageRequest:
    template = messaging_pb2.Template(name="order_update", language="pt_BR", parameters=["Ana", "#4521"])
    return send_request(phone_number_id, to, template=template, **fields)


async def open_window(emulator: Emulator, published: Records, phone_number_id: str, wa_id: str,
                      text: str = "oi, preciso de ajuda") -> dict:
    """The user writes to the number (the signed webhook reaches the connector): their 24 h
    window opens before the message is published, so it is open once the record is there."""
    injected = await emulator.inject(phone_number_id, wa_id, text, name="Ana Lima")
    await published.wait_for_text(phone_number_id, text)
    return injected


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# Sending ------------------------------------------------------------------------------------


async def test_text_template_and_media_sends_reach_whatsapp_in_the_cloud_api_shape(emulator, redis_prefix,
                                                                                  kafka_bootstrap, published):
    phone = new_phone_number_id()
    user = new_wa_id()
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone) as (stub, _):
        await open_window(emulator, published, phone, user)
        envelope = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": user}

        text = await stub.SendMessage(send_request(phone, f"+{user}", "olá from Chat4All ☕ https://chat4all.example/x"))
        template = await stub.SendMessage(template_request(phone, user))
        pdf = messaging_pb2.Attachment(
            file_id="f-pdf", content_type="application/pdf", filename="invoice-4521.pdf", size_bytes=48_213,
            download_url="https://files.chat4all.example/f-pdf?sig=abc",
        )
        png = messaging_pb2.Attachment(
            file_id="f-png", content_type="image/png", filename="photo.png", size_bytes=120_000,
            caption="the photo", download_url="https://files.chat4all.example/f-png?sig=def",
        )
        # The text rides on the first file as its caption; a file with its own caption keeps it.
        media = await stub.SendMessage(send_request(phone, user, "your invoice", attachments=(pdf, png)))

        requests = await emulator.requests(phone)
        assert [(r["method"], r["path"], r["status"]) for r in requests] == [
            ("POST", f"/{API_VERSION}/{phone}/messages", 200)
        ] * 4
        for request in requests:
            # The emulator accepts only its configured token; it records the scheme, not the value.
            assert request["headers"]["Authorization"] == "Bearer [redacted]"
            assert request["headers"]["Content-Type"] == "application/json"
        assert [r["body"] for r in requests] == [
            {**envelope, "type": "text",
             "text": {"body": "olá from Chat4All ☕ https://chat4all.example/x", "preview_url": False}},
            {**envelope, "type": "template",
             "template": {"name": "order_update", "language": {"code": "pt_BR"},
                          "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"},
                                                                         {"type": "text", "text": "#4521"}]}]}},
            {**envelope, "type": "document",
             "document": {"link": "https://files.chat4all.example/f-pdf?sig=abc", "caption": "your invoice",
                          "filename": "invoice-4521.pdf"}},
            {**envelope, "type": "image",
             "image": {"link": "https://files.chat4all.example/f-png?sig=def", "caption": "the photo"}},
        ]

        # The answers carry the wamids the platform returned, in send order.
        sent = await emulator.messages(phone)
        assert [m["type"] for m in sent] == ["text", "template", "document", "image"]
        assert list(text.platform_message_ids) == [sent[0]["wamid"]]
        assert list(template.platform_message_ids) == [sent[1]["wamid"]]
        assert list(media.platform_message_ids) == [sent[2]["wamid"], sent[3]["wamid"]]
        assert all(m["wamid"].startswith("wamid.") for m in sent)
        for reply in (text, template, media):
            assert reply.status == messaging_pb2.DELIVERY_STATUS_SENT
            assert abs(reply.send_time.seconds - time.time()) < 10
        assert sent[0]["window"] == "open"  # the emulator agrees the user had written

    # A token the platform does not take: UNAUTHENTICATED, without the token in the answer.
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone, subscribe=False,
                         whatsapp_access_token="EAAG-revoked-token") as (stub, _):
        rejected = await rpc_error(stub.SendMessage(template_request(phone, user)))
        assert rejected.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "190" in rejected.details() and "EAAG-revoked-token" not in rejected.details()
        assert (await emulator.requests(phone))[-1]["status"] == 401


async def test_media_without_a_download_url_is_refused_before_whatsapp(emulator, redis_prefix, kafka_bootstrap):
    """Media go by link only (the router resolves every attachment's download_url): there is no
    way to name a WhatsApp media id in SendMessage, so an attachment without a URL is refused."""
    phone = new_phone_number_id()
    user = new_wa_id()
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone, subscribe=False) as (stub, _):
        by_id = messaging_pb2.Attachment(file_id="1013859600285441", content_type="image/jpeg", size_bytes=1000)
        refused = await rpc_error(stub.SendMessage(send_request(phone, user, None, attachments=(by_id,))))
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert refused.details() == "attachment 1013859600285441 has no download URL for WhatsApp to fetch"
        too_big = messaging_pb2.Attachment(file_id="f-big", content_type="image/jpeg", size_bytes=6 * 1024 * 1024,
                                           download_url="https://files.chat4all.example/f-big")
        oversized = await rpc_error(stub.SendMessage(send_request(phone, user, None, attachments=(too_big,))))
        assert oversized.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "5242880" in oversized.details()
        assert await emulator.requests(phone) == []


# The 24-hour window -------------------------------------------------------------------------


async def test_free_form_messages_need_the_users_24h_window_templates_do_not(emulator, redis_prefix,
                                                                             kafka_bootstrap, published):
    phone = new_phone_number_id()
    user = new_wa_id()
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone) as (stub, _):
        closed = await rpc_error(stub.SendMessage(send_request(phone, user, "are you there?")))
        assert closed.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "window is closed" in closed.details() and "template" in closed.details()
        with_file = send_request(phone, user, None, attachments=(messaging_pb2.Attachment(
            file_id="f1", content_type="image/png", size_bytes=10, download_url="https://files.chat4all.example/f1"),))
        assert (await rpc_error(stub.SendMessage(with_file))).code() == grpc.StatusCode.FAILED_PRECONDITION
        assert await emulator.requests(phone) == []  # refused before any platform call

        # A template may open the conversation.
        reply = await stub.SendMessage(template_request(phone, user))
        [call] = await emulator.requests(phone)
        assert call["body"]["type"] == "template" and call["status"] == 200
        assert list(reply.platform_message_ids) == [(await emulator.messages(phone))[0]["wamid"]]

        # The user answers through the signed webhook: now free-form messages go.
        await open_window(emulator, published, phone, user, "sim, pode falar")
        reply = await stub.SendMessage(send_request(phone, user, "thanks for answering"))
        calls = await emulator.requests(phone)
        assert len(calls) == 2 and calls[-1]["body"]["text"]["body"] == "thanks for answering"
        assert calls[-1]["status"] == 200
        [_, message] = await emulator.messages(phone)
        assert list(reply.platform_message_ids) == [message["wamid"]] and message["window"] == "open"

        # The window is the user's own: another user's is still closed.
        other = await rpc_error(stub.SendMessage(send_request(phone, new_wa_id(), "hi")))
        assert other.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert len(await emulator.requests(phone)) == 2


async def test_a_window_opened_more_than_24h_ago_is_closed(emulator, redis_prefix, kafka_bootstrap, published):
    """The window runs from the user's message time as WhatsApp states it (a redelivery days
    late does not reopen it)."""
    phone = new_phone_number_id()
    user = new_wa_id()
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone) as (stub, _):
        await emulator.inject(phone, user, "old message", timestamp=time.time() - 25 * 3600)
        await published.wait_for_text(phone, "old message")
        closed = await rpc_error(stub.SendMessage(send_request(phone, user, "late answer")))
        assert closed.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert await emulator.requests(phone) == []


# Webhook ------------------------------------------------------------------------------------


async def test_webhook_handshake_and_signatures_and_redeliveries_published_once(emulator, redis_prefix,
                                                                               kafka_bootstrap, published):
    phone = new_phone_number_id()
    user = new_wa_id()
    async with (
        connector(emulator, redis_prefix, kafka_bootstrap, phone) as (_, url),
        aiohttp.ClientSession() as http,
    ):
        # Meta's verification handshake: the challenge back only for our token, in subscribe mode.
        async def handshake(**query: str) -> tuple[int, str]:
            async with http.get(url, params=query) as response:
                return response.status, await response.text()

        subscribe = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN}
        assert await handshake(**subscribe) == (200, "1158201444")
        for query in (
            {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "not-ours"},
            {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
            {"hub.mode": "unsubscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN},
        ):
            status, answer = await handshake(**query)
            assert status == 403 and "1158201444" not in answer
        subscription = await emulator.call("GET", "/_emulator/subscription")
        assert subscription["last_handshake"]["ok"] and subscription["subscription"]["callback_url"] == url

        # Forged posts: no signature (401), a signature with another secret or over other bytes (403).
        forged = json.dumps({
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp", "metadata": {"phone_number_id": phone},
                "contacts": [{"profile": {"name": "Eve"}, "wa_id": user}],
                "messages": [{"from": user, "id": "wamid.forged", "timestamp": str(int(time.time())),
                              "type": "text", "text": {"body": "forged"}}],
            }}]}],
        }).encode()
        for headers, expected in (
            ({}, 401),
            ({"X-Hub-Signature-256": sign(forged, "another-app-secret")}, 403),
            ({"X-Hub-Signature-256": sign(forged + b" ")}, 403),
            ({"X-Hub-Signature-256": "sha1=" + hmac.new(APP_SECRET.encode(), forged, "sha1").hexdigest()}, 403),
        ):
            async with http.post(url, data=forged, headers={"Content-Type": "application/json", **headers}) as response:
                assert response.status == expected

        # A real one, delivered twice (Meta redelivers), and one more after it from the same user
        # (same key, same partition: anything published for the first comes before it). Meta
        # escapes unicode and slashes: the signature is over those exact bytes.
        before = time.time()
        twice = await emulator.inject(phone, user, HELLO, name="Ana Lima", duplicate=1)
        assert "\\u00e1" in twice["raw"] and "\\/" in twice["raw"]
        attempts = await emulator.webhook_deliveries(phone, 2, kind="messages", wamid=twice["wamid"])
        assert [(a["http_status"], a["signature"]) for a in attempts] == [(200, sign(twice["raw"].encode()))] * 2
        await emulator.inject(phone, user, "sentinel")
        events = await published.wait_for_text(phone, "sentinel")

    assert texts(events) == [HELLO, "sentinel"]  # nothing forged, nothing twice
    assert published.keys(phone) == [f"{WHATSAPP}:{phone}:{user}".encode()] * 2
    event = events[0]
    assert event.WhichOneof("payload") == "inbound_message_received"
    assert uuid.UUID(event.event_id).version == 4
    received = event.inbound_message_received
    message = twice["message"]
    assert received.channel == WHATSAPP and received.account_id == phone
    assert (received.external_sender_id, received.external_chat_id) == (user, user)
    assert received.external_sender_display_name == "Ana Lima"
    assert received.external_message_id == twice["wamid"]
    assert received.chat_type == conversations_pb2.CONVERSATION_TYPE_DIRECT
    assert received.content == messaging_pb2.MessageContent(text=HELLO)
    assert received.platform_time.seconds == int(message["timestamp"])
    assert before - 1 <= received.receive_time.ToNanoseconds() / 1e9 <= time.time()


# Inbound media ------------------------------------------------------------------------------


def media_imports(outcome: str) -> float:
    return REGISTRY.get_sample_value("chat4all_connector_media_imports_total",
                                     {"connector": "whatsapp", "outcome": outcome}) or 0.0


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_inbound_media_are_imported_into_the_file_service_before_the_message_is_published(
        emulator, redis_prefix, kafka_bootstrap, published, file_service):
    phone = new_phone_number_id()
    user = new_wa_id()
    photo = noise_png(320, 320)
    # Three parts of the file service's 5 MiB: spooled to disk, then PUT from it a few at once.
    report = b"%PDF-1.4\n" + os.urandom(11 * 1024 * 1024 + 321)
    imported_before = media_imports("imported")
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone, files_target=file_service.target):
        image = await emulator.inject_media(phone, user, "image", {"bytes_b64": b64(photo), "mime_type": "image/png",
                                                                    "caption": "olha a foto 📷"}, name="Ana Lima")
        document = await emulator.inject_media(phone, user, "document", {
            "bytes_b64": b64(report), "mime_type": "application/pdf", "filename": "relatório 4521.pdf"})
        [image_event] = await published.wait_for_message(phone, image["wamid"])
        [document_event] = await published.wait_for_message(phone, document["wamid"])

    assert media_imports("imported") == imported_before + 2
    for event, injected, data, content_type, caption, filename in (
        (image_event, image, photo, "image/png", "olha a foto 📷", f"image-{image['media_id']}.png"),
        (document_event, document, report, "application/pdf", "", "relatório 4521.pdf"),
    ):
        received = event.inbound_message_received
        assert received.external_message_id == injected["wamid"]
        # Imported: an attachment, nothing left as WhatsApp's reference. The caption is the file's
        # (a client shows it with the file): not repeated as the message text.
        assert list(received.media) == []
        assert not received.content.HasField("text")
        [attachment] = received.content.attachments
        assert (attachment.caption, attachment.filename) == (caption, filename)
        # The file service has exactly the bytes WhatsApp served: its SHA-256 and size, in S3.
        file = await file_service.file(attachment.file_id)
        assert (file.sha256, file.size_bytes) == (hashlib.sha256(data).hexdigest(), len(data))
        assert base64.b64decode(injected["message"][injected["message"]["type"]]["sha256"]).hex() == file.sha256
        assert (file.filename, file.declared_content_type, file.owner_user_id) == (filename, content_type, "")
        assert file.state != files_pb2.FILE_STATE_UPLOADING  # completed: processing takes it from here
        assert await file_service.stored_bytes(attachment.file_id) == data
        assert await file_service.files_with_sha256(file.sha256) == 1

    # Fetched the way WhatsApp serves media: described by id, then downloaded, both with the token.
    for injected in (image, document):
        [described] = (await emulator.call("GET", "/_emulator/requests",
                                           params={"path": f"/{API_VERSION}/{injected['media_id']}"}))["requests"]
        assert (described["method"], described["status"]) == ("GET", 200)
        assert described["headers"]["Authorization"] == "Bearer [redacted]"
    downloads = (await emulator.call("GET", "/_emulator/requests",
                                     params={"path": "/whatsapp_business/attachments/"}))["requests"]
    ours = [d for d in downloads if d.get("media_id") in (image["media_id"], document["media_id"])]
    assert sorted((d["media_id"], d["status"]) for d in ours) == sorted(
        [(image["media_id"], 200), (document["media_id"], 200)])
    assert all(d["headers"]["Authorization"] == "Bearer [redacted]" for d in ours)


async def test_a_redelivered_media_message_reuses_its_file(emulator, redis_prefix, kafka_bootstrap, published,
                                                           file_service):
    phone = new_phone_number_id()
    user = new_wa_id()
    photo = noise_png(100, 100)
    sha256 = hashlib.sha256(photo).hexdigest()
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone, files_target=file_service.target):
        # Meta delivers it twice: one import, one event.
        injected = await emulator.inject_media(phone, user, "image", {"bytes_b64": b64(photo), "mime_type": "image/png"},
                                               duplicate=1)
        attempts = await emulator.webhook_deliveries(phone, 2, kind="messages", wamid=injected["wamid"])
        assert [attempt["http_status"] for attempt in attempts] == [200, 200]
        [first] = await published.wait_for_message(phone, injected["wamid"])
    [attachment] = first.inbound_message_received.content.attachments
    assert await file_service.files_with_sha256(sha256) == 1

    # Delivered again to a connector that does not remember handling it (as after a crash between
    # the import and the publish): imported into the same upload, which is complete, so reused.
    reused_before = media_imports("reused")
    raw = injected["raw"].encode()
    async with (
        redis_namespace("whatsapp", WhatsAppSettings) as (_, forgetful_prefix),
        connector(emulator, forgetful_prefix, kafka_bootstrap, phone, subscribe=False,
                  files_target=file_service.target) as (_, url),
        aiohttp.ClientSession() as http,
    ):
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw)}
        async with http.post(url, data=raw, headers=headers) as response:
            assert response.status == 200
        first_again, second = await published.wait_for_message(phone, injected["wamid"], count=2)

    assert first_again == first
    assert second.event_id == first.event_id
    assert list(second.inbound_message_received.content.attachments) == [attachment]
    assert await file_service.files_with_sha256(sha256) == 1
    assert media_imports("reused") == reused_before + 1


async def test_media_that_cannot_be_imported_are_published_as_whatsapps_reference(
        emulator, redis_prefix, kafka_bootstrap, published, file_service, no_faults):
    phone = new_phone_number_id()
    user = new_wa_id()
    photo = noise_png(40, 40)
    failed_before = {outcome: media_imports(outcome) for outcome in ("download_failed", "upload_failed")}
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone, files_target=file_service.target):
        # A media id WhatsApp no longer has: describing it answers Graph error 100.
        gone_id = await emulator.gone_media_id(phone)
        gone = await emulator.inject_media(phone, user, "image", {"size": 1}, fields={"image": {
            "id": gone_id, "mime_type": "image/jpeg", "sha256": b64(hashlib.sha256(b"old").digest()),
            "caption": "lembra desta?"}})
        # WhatsApp's API down: the media can be neither described nor downloaded.
        await emulator.faults(down=True)
        down = await emulator.inject_media(phone, user, "document", {
            "bytes_b64": b64(b"%PDF-1.4\n" + os.urandom(10_000)), "mime_type": "application/pdf",
            "filename": "boleto.pdf"})
        [gone_event] = await published.wait_for_message(phone, gone["wamid"])
        [down_event] = await published.wait_for_message(phone, down["wamid"])
        await emulator.clear_faults()

    # The file service unreachable (a connector pointed nowhere): downloaded, but not stored.
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone):
        unstored = await emulator.inject_media(phone, user, "image", {
            "bytes_b64": b64(photo), "mime_type": "image/png", "caption": "e esta?"})
        [unstored_event] = await published.wait_for_message(phone, unstored["wamid"])

    # Each is published anyway, with WhatsApp's reference for a later fetch and its caption as
    # the text (nothing else would show what the sender wrote).
    for event, injected, text in ((gone_event, gone, "lembra desta?"), (down_event, down, ""),
                                  (unstored_event, unstored, "e esta?")):
        received = event.inbound_message_received
        sent = injected["message"][injected["message"]["type"]]
        assert list(received.content.attachments) == []
        assert received.content.text == text
        [media] = received.media
        assert (media.media_id, media.mime_type, media.sha256) == (sent["id"], sent["mime_type"], sent["sha256"])
        assert media.caption == sent.get("caption", "") and media.filename == sent.get("filename", "")
    assert gone_event.inbound_message_received.media[0].kind == message_pb2.CONTENT_KIND_IMAGE
    assert down_event.inbound_message_received.media[0].kind == message_pb2.CONTENT_KIND_DOCUMENT
    assert media_imports("download_failed") == failed_before["download_failed"] + 2
    assert media_imports("upload_failed") == failed_before["upload_failed"] + 1
    assert await file_service.file_count() == 0


# Statuses -----------------------------------------------------------------------------------


async def test_status_webhooks_become_delivery_status_changes_once_each(emulator, redis_prefix,
                                                                        kafka_bootstrap, published):
    phone = new_phone_number_id()
    user = new_wa_id()
    conversation = str(uuid.uuid4())
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone) as (stub, _):
        await open_window(emulator, published, phone, user)
        first = send_request(phone, user, "your order shipped", conversation_id=conversation)
        [wamid] = (await stub.SendMessage(first)).platform_message_ids
        # The emulator reports sent, then delivered, by itself; the user reads it (reported twice).
        await published.wait_for_statuses(conversation, 2)
        await emulator.call("POST", "/_emulator/statuses", json={"id": wamid, "statuses": ["read"], "duplicate": 1})

        # WhatsApp's window for the user closed (it disagrees with ours, which still holds the
        # user's message): it accepts the text, then reports it failed with 131047.
        await emulator.call("PUT", f"/_emulator/contacts/{phone}/{user}",
                            json={"last_inbound_time": time.time() - 25 * 3600})
        second = send_request(phone, user, "are you still there?", conversation_id=conversation)
        [failed_wamid] = (await stub.SendMessage(second)).platform_message_ids
        events = await published.wait_for_statuses(conversation, 4)
        reads = await emulator.webhook_deliveries(phone, 2, kind="statuses", wamid=wamid, status="read")
        assert [r["http_status"] for r in reads] == [200, 200]
        # Sent after both read deliveries were answered, on the same key: a second READ would be here.
        assert (await emulator.messages(phone))[-1]["window"] == "closed"

    first_id, second_id = first.message_id, second.message_id
    assert changes(events) == [
        (first_id, S.DELIVERY_STATUS_SENT),
        (first_id, S.DELIVERY_STATUS_DELIVERED),
        (first_id, S.DELIVERY_STATUS_READ),
        (second_id, S.DELIVERY_STATUS_FAILED),
    ]
    for event, request, platform_id in zip(events, (first, first, first, second), (wamid, wamid, wamid, failed_wamid)):
        assert event.conversation_id == conversation
        changed = event.delivery_status_changed
        assert changed.platform_message_id == platform_id
        assert changed.recipient == request.recipient
        assert event.occur_time == changed.change.change_time
        assert abs(changed.change.change_time.seconds - time.time()) < 30
    assert [e.delivery_status_changed.change.reason for e in events[:3]] == [""] * 3
    failure = events[3].delivery_status_changed.change
    assert failure.reason == REENGAGEMENT
    assert failure.platform_error_code == "131047"
    assert len({e.event_id for e in events}) == 4


# Limits -------------------------------------------------------------------------------------


async def test_the_numbers_throughput_limit_refuses_a_burst_before_whatsapp(emulator, redis_prefix, kafka_bootstrap):
    phone = new_phone_number_id()
    limits = dict(whatsapp_messages_per_second=2.0, whatsapp_burst=5)
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone, subscribe=False, **limits) as (stub, _):
        requests = [template_request(phone, new_wa_id()) for _ in range(8)]
        answers = await asyncio.gather(*(stub.SendMessage(r) for r in requests), return_exceptions=True)
        accepted = [a for a in answers if isinstance(a, request_response_pb2.SendMessageResponse)]
        refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
        assert (len(accepted), len(refused)) == (5, 3), answers
        for error in refused:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "account send limit" in error.details()
            assert 0 < retry_after_seconds(error) <= 0.5  # one interval of 2/s
        sent = await emulator.requests(phone)
        assert len(sent) == 5 and all(call["status"] == 200 for call in sent)  # the refused never left
        admitted = {a.platform_message_ids[0] for a in accepted}
        assert admitted == {m["wamid"] for m in await emulator.messages(phone)}

        # The wait it gave is the real one.
        await asyncio.sleep(max(retry_after_seconds(error) for error in refused))
        await stub.SendMessage(template_request(phone, new_wa_id()))
        assert len(await emulator.requests(phone)) == 6


async def test_a_whatsapp_429_holds_the_numbers_sends_for_its_retry_after(emulator, redis_prefix, kafka_bootstrap,
                                                                          no_faults):
    phone = new_phone_number_id()
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone, subscribe=False) as (stub, _):
        await emulator.faults(fail_next_429=1, retry_after=2)
        throttled = await rpc_error(stub.SendMessage(template_request(phone, new_wa_id())))
        assert throttled.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert retry_after_seconds(throttled) == 2
        assert "130429" in throttled.details()
        [call] = await emulator.requests(phone)
        assert call["status"] == 429

        # Until then every send of the number is refused before WhatsApp, to anyone, with the
        # rest of the wait (plus at most one interval of the number's 80/s).
        for _ in range(2):
            held = await rpc_error(stub.SendMessage(template_request(phone, new_wa_id())))
            assert held.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "130429" not in held.details() and "account send limit" in held.details()
            assert 1.0 < retry_after_seconds(held) <= 2 + 1 / 80 + 0.01
        assert len(await emulator.requests(phone)) == 1

        await asyncio.sleep(retry_after_seconds(held))
        reply = await stub.SendMessage(template_request(phone, new_wa_id()))
        assert len(reply.platform_message_ids) == 1
        assert [call["status"] for call in await emulator.requests(phone)] == [429, 200]


# Circuit breaker ----------------------------------------------------------------------------


def circuit_gauge(phone_number_id: str) -> float | None:
    return REGISTRY.get_sample_value("chat4all_connector_circuit_state",
                                     {"connector": "whatsapp", "account": phone_number_id})


async def test_the_circuit_opens_after_consecutive_5xx_fails_fast_and_closes_when_whatsapp_recovers(
        emulator, redis_prefix, kafka_bootstrap, no_faults):
    phone = new_phone_number_id()
    user = new_wa_id()
    breaker = dict(connector_breaker_failure_threshold=3, connector_breaker_open_seconds=0.5,
                   connector_breaker_max_open_seconds=1.0)
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone, subscribe=False, **breaker) as (stub, _):
        assert circuit_gauge(phone) == 0
        await emulator.faults(down=True)
        failures = [await rpc_error(stub.SendMessage(template_request(phone, user))) for _ in range(3)]
        assert [error.code() for error in failures] == [grpc.StatusCode.UNAVAILABLE] * 3
        assert all("Service temporarily unavailable" in error.details() for error in failures)
        # Two transient failures; the third opens the circuit and says when to come back.
        assert [retry_after_seconds(error) for error in failures[:2]] == [None, None]
        assert 0 < retry_after_seconds(failures[2]) <= 0.5
        assert circuit_gauge(phone) == 1

        # Open: answered at once, with the wait, without calling WhatsApp.
        fast = await rpc_error(stub.SendMessage(template_request(phone, user)))
        assert fast.code() == grpc.StatusCode.UNAVAILABLE
        assert "circuit" in fast.details()
        assert 0 < retry_after_seconds(fast) <= 0.5
        assert len(await emulator.sends(phone)) == 3
        health = await stub.CheckHealth(request_response_pb2.CheckHealthRequest(account_id=phone))
        assert health.circuit_state == message_pb2.CIRCUIT_STATE_OPEN
        assert not health.platform_reachable
        assert circuit_gauge(phone) == 1

        # After the wait one probe goes through; WhatsApp still fails: open again, twice as long.
        await asyncio.sleep(retry_after_seconds(fast))
        probe = await rpc_error(stub.SendMessage(template_request(phone, user)))
        assert probe.code() == grpc.StatusCode.UNAVAILABLE and "circuit open" in probe.details()
        assert 0.5 < retry_after_seconds(probe) <= 1.0
        assert len(await emulator.sends(phone)) == 4

        # WhatsApp recovers: the next probe succeeds and closes the circuit.
        await emulator.call("DELETE", "/_emulator/faults")
        await asyncio.sleep(retry_after_seconds(probe))
        reply = await stub.SendMessage(template_request(phone, user))
        assert len(reply.platform_message_ids) == 1
        assert circuit_gauge(phone) == 0
        await stub.SendMessage(template_request(phone, user))
        assert [call["status"] for call in await emulator.sends(phone)] == [503] * 4 + [200, 200]
        health = await stub.CheckHealth(request_response_pb2.CheckHealthRequest(account_id=phone))
        assert health.circuit_state == message_pb2.CIRCUIT_STATE_CLOSED


# Groups -------------------------------------------------------------------------------------


async def test_group_messages_in_and_out_and_a_group_message_opens_no_1to1_window(emulator, redis_prefix,
                                                                                  kafka_bootstrap, published):
    phone = new_phone_number_id()
    user = new_wa_id()
    group = "Y2FwaV9ncm91cDoxNTU1MDAwMTIzNDoxMjAzNjM"
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone) as (stub, _):
        injected = await emulator.inject(phone, user, "hello group", name="Ana Lima", group_id=group)
        [event] = await published.wait_for_text(phone, "hello group")
        assert published.keys(phone) == [f"{WHATSAPP}:{phone}:{group}".encode()]
        received = event.inbound_message_received
        assert received.chat_type == conversations_pb2.CONVERSATION_TYPE_GROUP
        assert (received.external_chat_id, received.external_sender_id) == (group, user)
        assert received.external_message_id == injected["wamid"]

        # To the group: no window; the one business number says who wrote it.
        reply = await stub.SendMessage(send_request(phone, group, "hi all", sender_display_name="Bruno Reis"))
        [call] = await emulator.requests(phone)
        assert call["body"] == {"messaging_product": "whatsapp", "recipient_type": "group", "to": group,
                                "type": "text", "text": {"body": "Bruno Reis: hi all", "preview_url": False}}
        assert list(reply.platform_message_ids) == [(await emulator.messages(phone))[0]["wamid"]]

        # Writing in a group is not writing to the business: the user's own window stays closed
        # (WhatsApp would accept a free-form message and then fail it with 131047).
        assert (await emulator.call("GET", f"/_emulator/contacts/{phone}/{user}"))["contact"]["window_open"] is False
        closed = await rpc_error(stub.SendMessage(send_request(phone, user, "about your group message")))
        assert closed.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert len(await emulator.requests(phone)) == 1


# Capabilities and health --------------------------------------------------------------------


async def test_capabilities_and_health(emulator, redis_prefix, kafka_bootstrap):
    phone = new_phone_number_id()
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone, subscribe=False) as (stub, _):
        capabilities = await stub.GetCapabilities(request_response_pb2.GetCapabilitiesRequest(account_id=phone))
        K = message_pb2.ContentKind
        assert capabilities.channel == WHATSAPP
        assert set(capabilities.content_kinds) == {
            K.CONTENT_KIND_TEXT, K.CONTENT_KIND_TEMPLATE, K.CONTENT_KIND_IMAGE, K.CONTENT_KIND_AUDIO,
            K.CONTENT_KIND_VIDEO, K.CONTENT_KIND_DOCUMENT, K.CONTENT_KIND_STICKER,
        }
        assert {(m.content_kind, m.max_size_bytes) for m in capabilities.media_limits} == {
            (K.CONTENT_KIND_IMAGE, 5 * 1024 * 1024), (K.CONTENT_KIND_AUDIO, 16 * 1024 * 1024),
            (K.CONTENT_KIND_VIDEO, 16 * 1024 * 1024), (K.CONTENT_KIND_DOCUMENT, 100 * 1024 * 1024),
            (K.CONTENT_KIND_STICKER, 100 * 1024),
        }
        limits = {(limit.scope, limit.max_messages, limit.period.seconds, limit.platform_error_code)
                  for limit in capabilities.rate_limits}
        assert limits == {
            (message_pb2.RATE_LIMIT_SCOPE_ACCOUNT, 80, 1, "130429"),
            (message_pb2.RATE_LIMIT_SCOPE_RECIPIENT, 1, 6, "131056"),
        }
        assert list(capabilities.reported_statuses) == [S.DELIVERY_STATUS_SENT, S.DELIVERY_STATUS_DELIVERED,
                                                        S.DELIVERY_STATUS_READ, S.DELIVERY_STATUS_FAILED]
        assert capabilities.reply_window.seconds == 24 * 3600
        assert capabilities.supports_groups and capabilities.max_text_length == 4096

        health = await stub.CheckHealth(request_response_pb2.CheckHealthRequest(account_id=phone))
        assert health.platform_reachable and health.circuit_state == message_pb2.CIRCUIT_STATE_CLOSED
        assert health.detail == ""
        assert 0 < health.latency.ToNanoseconds() < 2e9
        assert abs(health.check_time.seconds - time.time()) < 5
        [probe] = await emulator.requests(phone)  # the number's node: an authenticated, cheap read
        assert (probe["method"], probe["path"], probe["status"]) == ("GET", f"/{API_VERSION}/{phone}", 200)
        assert probe["headers"]["Authorization"] == "Bearer [redacted]"
        unknown = await rpc_error(stub.CheckHealth(request_response_pb2.CheckHealthRequest(account_id="1")))
        assert unknown.code() == grpc.StatusCode.NOT_FOUND

    # A platform that does not answer.
    async with connector(emulator, redis_prefix, kafka_bootstrap, phone, subscribe=False,
                         whatsapp_api_url=f"http://127.0.0.1:{free_port()}") as (stub, _):
        health = await stub.CheckHealth(request_response_pb2.CheckHealthRequest())
        assert not health.platform_reachable and health.detail
        assert ACCESS_TOKEN not in health.detail
