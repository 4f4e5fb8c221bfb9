"""Platform events (messages, status reports) become Kafka events, at most once each.

Every platform event has an id of its own (a Telegram update_id, a WhatsApp
wamid, a wamid and status pair...). `InboundPublisher.publish_once` claims the
id in Redis before publishing (SET NX with a short expiry) and marks it done
after Kafka acknowledged the event, for as long as the platform may redeliver:
a redelivery finds it done and is dropped, a concurrent one finds it busy. A
failure to publish releases the claim and raises, so the platform's retry (or
the poller's next round) publishes it. A set of handled ids, rather than "the
highest id seen", also survives events delivered late or out of order.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as redis
from aiokafka import AIOKafkaProducer
from chat4all.events.v1 import event_pb2

from connectors.sdk import metrics
from services.runtime import kafka

log = logging.getLogger("chat4all.connector.inbound")

PUBLISHED, DUPLICATE, IGNORED, BUSY = "published", "duplicate", "ignored", "busy"
# How long one handler may hold an event before a redelivery may take it over.
_CLAIM_MS = 30_000
_PUBLISH_TIMEOUT_SECONDS = 15.0

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def event_id_for(*parts: object) -> str:
    """A UUIDv4-shaped id that is a function of the platform's ids, so a re-publish keeps its event_id."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def inbound_key(channel: int, account_id: str, chat_id: str) -> str:
    """The inbound record key: "<channel>:<account_id>:<external_chat_id>", channel as its enum number."""
    return f"{channel}:{account_id}:{chat_id}"


class InboundLedger:
    """Which platform event ids were handled (for days) and which are being handled now."""

    def __init__(self, client: redis.Redis, prefix: str, ttl_seconds: int) -> None:
        self._redis = client
        self._release = client.register_script(_RELEASE)
        self._prefix = prefix
        self._ttl_seconds = ttl_seconds

    async def claim(self, event_key: str) -> tuple[str, str]:
        """("claimed", token) when this caller handles it, else (duplicate | busy, "")."""
        key = f"{self._prefix}:{event_key}"
        token = f"pending:{secrets.token_hex(8)}"
        if await self._redis.set(key, token, nx=True, px=_CLAIM_MS):
            return "claimed", token
        state = await self._redis.get(key)
        return (DUPLICATE if state == b"done" else BUSY), ""

    async def done(self, event_key: str) -> None:
        await self._redis.set(f"{self._prefix}:{event_key}", "done", ex=self._ttl_seconds)

    async def release(self, event_key: str, token: str) -> None:
        await self._release(keys=[f"{self._prefix}:{event_key}"], args=[token])


# What to publish for a claimed event: (topic, key, event), or None and why it is ignored.
Build = Callable[[], Awaitable[tuple[str, str, event_pb2.Event] | tuple[None, str, None]]]


class InboundPublisher:
    def __init__(self, connector: str, ledger: InboundLedger, producer: AIOKafkaProducer) -> None:
        self.connector = connector
        self.ledger = ledger
        self.producer = producer

    async def publish_once(self, kind: str, event_key: str, build: Build) -> str:
        """published | duplicate | ignored | busy; raises when publishing failed (deliver it again)."""
        state, token = await self.ledger.claim(event_key)
        if state != "claimed":
            log.info("%s %s", kind, state, extra={"event_key": event_key})
            metrics.INBOUND.labels(self.connector, kind, state).inc()
            return state
        try:
            topic, key, event = await build()
            if event is None:
                log.info("%s ignored: %s", kind, key, extra={"event_key": event_key})
                outcome = IGNORED
            else:
                async with asyncio.timeout(_PUBLISH_TIMEOUT_SECONDS):
                    await kafka.publish(self.producer, topic, key, event)
                outcome = PUBLISHED
            await self.ledger.done(event_key)
        except BaseException as error:
            metrics.INBOUND.labels(self.connector, kind, "failed").inc()
            if not isinstance(error, asyncio.CancelledError):
                log.warning("%s not handled; it will come again: %r", kind, error, extra={"event_key": event_key})
            try:
                await self.ledger.release(event_key, token)
            except Exception:  # the claim expires by itself
                log.warning("could not release the claim of %s", event_key)
            raise
        metrics.INBOUND.labels(self.connector, kind, outcome).inc()
        return outcome

    async def publish_waiting(self, kind: str, event_key: str, build: Build, wait_seconds: float = 5.0) -> str:
        """publish_once, waiting a little while another request handles the same event (a
        redelivery racing the first try) so the platform need not come back."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while (outcome := await self.publish_once(kind, event_key, build)) == BUSY and loop.time() < deadline:
            await asyncio.sleep(0.1)
        return outcome
