"""Telegram updates become InboundMessageReceived events on chat4all.inbound.v1.

Both ways updates come in (webhook, polling) hand each update to
`InboundUpdates.handle`, which publishes it at most once per update_id and
only then marks it handled:

- every update_id is claimed in Redis before it is handled (SET NX with a
  short expiry) and marked done after Kafka acknowledged it, for a few days;
  a redelivery finds it done and is dropped, a concurrent one finds it busy.
  A set of handled ids, rather than "at or below the highest handled id",
  also survives an update delivered late or out of order, and Telegram
  choosing new ids after a week without updates, without losing anything;
- a failure to publish releases the claim and raises, so the update is
  retried (the webhook answers 500, the poller does not advance its offset).

Order: Telegram keeps updates in update_id order and, with one webhook
connection (we ask for max_connections=1), delivers the next only after the
previous one was acknowledged; getUpdates batches are handled in update_id
order. Updates of a chat are keyed by the chat, so they stay in order in Kafka.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import uuid
from typing import Any

import redis.asyncio as redis
from aiokafka import AIOKafkaProducer
from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as conversations_pb2
from chat4all.events.v1 import event_pb2

from connectors.telegram import metrics
from connectors.telegram.settings import TelegramSettings
from services.messaging import topics
from services.runtime import kafka

log = logging.getLogger("chat4all.telegram.updates")

# The update types the connector handles; Telegram sends only these (other types that
# arrive anyway, e.g. through a webhook someone else registered, are logged and dropped).
ALLOWED_UPDATES = ["message"]
# How long one handler may hold an update before a redelivery may take it over.
_CLAIM_MS = 30_000
_PUBLISH_TIMEOUT_SECONDS = 15.0

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

PUBLISHED, DUPLICATE, IGNORED, BUSY = "published", "duplicate", "ignored", "busy"


def event_id_for(bot_id: str, update_id: int) -> str:
    """A UUIDv4-shaped id that is a function of the update, so a re-publish keeps its event_id."""
    digest = hashlib.sha256(f"telegram-update\x1f{bot_id}\x1f{update_id}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def display_name(user: dict[str, Any]) -> str:
    name = " ".join(part for part in (user.get("first_name"), user.get("last_name")) if part)
    if name:
        return name
    return f"@{user['username']}" if user.get("username") else ""


def inbound_event(update: dict[str, Any], bot_id: str, receive_time: float) -> tuple[event_pb2.Event | None, str]:
    """The event for an update, or None and why it is not one (logged by the caller)."""
    message = update.get("message")
    if not isinstance(message, dict):
        kind = next((key for key in update if key != "update_id"), "empty")
        return None, f"{kind} updates are not handled"
    sender = message.get("from")
    chat = message.get("chat")
    if not isinstance(sender, dict) or not isinstance(chat, dict):
        return None, "a message without a sender or chat"
    if not all(isinstance(value, int) for value in (sender.get("id"), chat.get("id"), message.get("message_id"))):
        return None, "a message without its ids"
    if sender.get("is_bot"):
        # Bots (our own echoes included, and anonymous group admins) must not loop back in.
        return None, "a message from a bot"
    chat_type = chat.get("type")
    if chat_type not in ("private", "group", "supergroup"):
        return None, f"a message in a {chat_type} chat"
    text = message.get("text")
    if not isinstance(text, str):
        return None, "a message without text (media are not handled yet)"

    event = event_pb2.Event(event_id=event_id_for(bot_id, update["update_id"]))
    received = event.inbound_message_received
    received.channel = channel_pb2.CHANNEL_TELEGRAM
    received.account_id = bot_id
    received.external_sender_id = str(sender["id"])
    received.external_sender_display_name = display_name(sender)
    received.external_message_id = str(message["message_id"])
    received.external_chat_id = str(chat["id"])
    received.chat_type = (
        conversations_pb2.CONVERSATION_TYPE_DIRECT if chat_type == "private" else conversations_pb2.CONVERSATION_TYPE_GROUP
    )
    received.content.text = text
    received.platform_time.FromSeconds(int(message.get("date") or 0))
    received.receive_time.FromNanoseconds(int(receive_time * 1e9))
    event.occur_time.CopyFrom(received.platform_time)
    return event, ""


def inbound_key(bot_id: str, chat_id: str) -> str:
    """The record key: "<channel>:<account_id>:<external_chat_id>", channel as its enum number."""
    return f"{channel_pb2.CHANNEL_TELEGRAM}:{bot_id}:{chat_id}"


class UpdateLedger:
    """Which update_ids were handled (for a few days) and which are being handled now."""

    def __init__(self, client: redis.Redis, settings: TelegramSettings) -> None:
        self._redis = client
        self._release = client.register_script(_RELEASE)
        self._prefix = f"{settings.telegram_redis_prefix}:{{{settings.bot_id}}}:update"
        self._ttl_seconds = settings.telegram_update_ttl_seconds

    async def claim(self, update_id: int) -> tuple[str, str]:
        """(claimed, token) when this caller handles it, else (duplicate | busy, "")."""
        key = f"{self._prefix}:{update_id}"
        token = f"pending:{secrets.token_hex(8)}"
        if await self._redis.set(key, token, nx=True, px=_CLAIM_MS):
            return "claimed", token
        state = await self._redis.get(key)
        return (DUPLICATE if state == b"done" else BUSY), ""

    async def done(self, update_id: int) -> None:
        await self._redis.set(f"{self._prefix}:{update_id}", "done", ex=self._ttl_seconds)

    async def release(self, update_id: int, token: str) -> None:
        await self._release(keys=[f"{self._prefix}:{update_id}"], args=[token])


class InboundUpdates:
    def __init__(self, settings: TelegramSettings, ledger: UpdateLedger, producer: AIOKafkaProducer) -> None:
        self.bot_id = settings.bot_id
        self.ledger = ledger
        self.producer = producer

    async def handle(self, update: dict[str, Any], mode: str) -> str:
        """published | duplicate | ignored | busy; raises when publishing failed (retry later)."""
        update_id = update.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            log.warning("an update without an update_id was dropped", extra={"mode": mode})
            metrics.INBOUND_UPDATES.labels(mode, IGNORED).inc()
            return IGNORED
        state, token = await self.ledger.claim(update_id)
        if state != "claimed":
            log.info("update %s", state, extra={"update_id": update_id, "mode": mode})
            metrics.INBOUND_UPDATES.labels(mode, state).inc()
            return state
        try:
            event, reason = inbound_event(update, self.bot_id, time.time())
            if event is None:
                log.info("update ignored: %s", reason, extra={"update_id": update_id, "mode": mode})
                outcome = IGNORED
            else:
                received = event.inbound_message_received
                async with asyncio.timeout(_PUBLISH_TIMEOUT_SECONDS):
                    await kafka.publish(
                        self.producer, topics.INBOUND, inbound_key(self.bot_id, received.external_chat_id), event
                    )
                outcome = PUBLISHED
            await self.ledger.done(update_id)
        except BaseException as error:
            metrics.INBOUND_UPDATES.labels(mode, "failed").inc()
            if not isinstance(error, asyncio.CancelledError):
                log.warning("update not handled; it will come again: %r", error,
                            extra={"update_id": update_id, "mode": mode})
            try:
                await self.ledger.release(update_id, token)
            except Exception:  # the claim expires by itself
                log.warning("could not release the claim of update %s", update_id)
            raise
        metrics.INBOUND_UPDATES.labels(mode, outcome).inc()
        return outcome
