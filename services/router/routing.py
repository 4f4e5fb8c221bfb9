"""Handling one record of the messages topic: store, fan out, dispatch, record.

A message is stored once (deduplicated by message_id, and by the client's
request_id for internal sends), then handed to every recipient's connector;
the record counts as handled only when every delivery was sent or
dead-lettered, so the next message of the conversation waits for it (order),
while other conversations go on in their own lanes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence

import grpc
import psycopg
from aiokafka import AIOKafkaProducer, ConsumerRecord
from chat4all.channel.v1 import channel_pb2
from chat4all.connector.v1 import request_response_pb2 as connector_requests
from chat4all.events.v1 import event_pb2
from chat4all.messaging.v1 import message_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace
from psycopg_pool import AsyncConnectionPool

from services.messaging import store, topics
from services.messaging.attachments import PENDING_RETRY_SECONDS, AttachmentPending, AttachmentRefused, Attachments
from services.messaging.ingest import CLIENT_HEADER
from services.router.connectors import Connector
from services.router.dispatch import Outcome, backoff_seconds, classify
from services.router.recipients import INTERNAL, Audience, RecipientResolver
from services.router.settings import RouterSettings
from services.runtime import kafka

log = logging.getLogger("chat4all.router")
tracer = trace.get_tracer("chat4all.router")
S = message_pb2.DeliveryStatus
_UNFINISHED = {S.DELIVERY_STATUS_ACCEPTED, S.DELIVERY_STATUS_DISPATCHED, S.DELIVERY_STATUS_RETRYING}


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _change(status: int, attempt: int = 0, reason: str = "", code: str = "", at: Timestamp | None = None) -> message_pb2.StatusChange:
    change = message_pb2.StatusChange(status=status, attempt=attempt, reason=reason, platform_error_code=code)
    change.change_time.CopyFrom(at or _now())
    change.record_time.CopyFrom(_now())
    return change


class Router:
    def __init__(
        self,
        settings: RouterSettings,
        pool: AsyncConnectionPool,
        producer: AIOKafkaProducer,
        resolver: RecipientResolver,
        connectors: dict[int, Connector],
        attachments: Attachments,
    ) -> None:
        self.attachments = attachments
        self.settings = settings
        self.pool = pool
        self.producer = producer
        self.resolver = resolver
        self.connectors = connectors

    async def handle(self, record: ConsumerRecord) -> None:
        event = kafka.decode(record, event_pb2.Event)
        kind = event.WhichOneof("payload")
        with tracer.start_as_current_span(
            f"route {kind}", context=kafka.trace_context(record), kind=trace.SpanKind.CONSUMER
        ) as span:
            span.set_attribute("chat4all.conversation_id", event.conversation_id)
            if kind == "message_accepted":
                client_id = kafka.headers_of(record).get(CLIENT_HEADER)
                await self.route_message(event.message_accepted.message, client_id)
            elif kind == "dead_letter_replayed":
                await self.replay(event.dead_letter_replayed)
            elif kind == "delivery_status_changed":
                await self.apply_status_report(event.conversation_id, event.delivery_status_changed)
            else:
                log.warning("skipping an event the router does not handle", extra={"payload": kind})

    # Messages ---------------------------------------------------------------------------

    async def route_message(self, message: message_pb2.Message, client_id: str | None) -> None:
        async with self.pool.connection() as conn:
            existing = await store.deliveries_of(conn, message.message_id) if await store.message_exists(conn, message.message_id) else None
        if existing is not None:
            # Seen before (a redelivery after a crash or rebalance): finish what was left.
            unfinished = [d.recipient for d in existing if d.status in _UNFINISHED]
            if unfinished:
                audience = await self.resolver.resolve(message)
                await self._deliver_all(message, dataclasses.replace(audience, recipients=unfinished))
            return

        audience = await self.resolver.resolve(message)
        request_id = message.origin.internal.request_id if message.origin.HasField("internal") else None
        accepted = _change(S.DELIVERY_STATUS_ACCEPTED, at=message.create_time)
        created = message_pb2.ConversationEvent(conversation_id=message.conversation_id)
        created.occur_time.CopyFrom(message.create_time)
        created.message_created.CopyFrom(message)
        for recipient in audience.recipients:
            delivery = created.message_created.deliveries.add(recipient=recipient, status=S.DELIVERY_STATUS_ACCEPTED, history=[accepted])
            delivery.update_time.CopyFrom(accepted.change_time)
        stored = False
        async with self.pool.connection() as conn, conn.transaction():
            seq = await store.append_event(conn, created)
            if not await store.insert_message(conn, message, seq, client_id if request_id else None, request_id):
                # The same client request under another message_id (its acknowledgement was
                # lost and the client retried): already stored once; undo this copy's event.
                raise psycopg.Rollback()
            await store.insert_deliveries(conn, message.message_id, audience.recipients, accepted)
            stored = True
        if not stored:
            log.info("dropped a duplicate of an earlier request", extra={"message_id": message.message_id})
            return
        await self._deliver_all(message, audience)

    async def _deliver_all(self, message: message_pb2.Message, audience: Audience) -> None:
        await asyncio.gather(*(self._deliver(message, audience, r) for r in audience.recipients))

    async def _deliver(self, message: message_pb2.Message, audience: Audience, recipient: message_pb2.Recipient) -> None:
        if recipient.channel == INTERNAL:
            # Internal members read the conversation's event stream, which has it now.
            await self._record(message, recipient, [_change(S.DELIVERY_STATUS_SENT)])
            return
        connector = self.connectors.get(recipient.channel)
        if connector is None:
            await self._dead_letter(message, recipient, 0, f"no connector is configured for {_channel_name(recipient.channel)}", "", [])
            return
        attempt, deferrals, deferred_until = 1, 0, time.monotonic() + self.settings.max_deferral_seconds
        timeout = self.settings.connector_media_timeout_seconds if message.content.attachments else self.settings.connector_timeout_seconds
        request = connector_requests.SendMessageRequest(
            message_id=message.message_id,
            conversation_id=message.conversation_id,
            account_id=audience.account_for(recipient) or connector.account_id,
            sender_user_id=message.sender_user_id,
            sender_display_name=audience.sender_name,
            recipient=recipient,
            content=message.content,
        )
        while True:
            request.attempt = attempt
            dispatched = _change(S.DELIVERY_STATUS_DISPATCHED, attempt)
            try:
                if message.content.attachments:
                    request.content.CopyFrom(await self.attachments.for_connector(message.content))
                reply = await connector.stub.SendMessage(request, timeout=timeout)
            except AttachmentRefused as refused:
                await self._fail(message, recipient, attempt, f"attachment not sendable: {refused}", "", [dispatched])
                return
            except (AttachmentPending, grpc.aio.AioRpcError) as error:
                if isinstance(error, AttachmentPending):
                    outcome, retry_after, reason, code = Outcome.DEFER, PENDING_RETRY_SECONDS, f"attachment not ready: {error}", ""
                else:
                    outcome, retry_after = classify(error)
                    reason, code = error.details() or error.code().name, error.code().name
                if outcome is Outcome.FINAL:
                    await self._fail(message, recipient, attempt, reason, code, [dispatched])
                    return
                if outcome is Outcome.PERMANENT:
                    await self._dead_letter(message, recipient, attempt, reason, code, [dispatched])
                    return
                if outcome is Outcome.TRANSIENT and attempt >= self.settings.max_attempts:
                    await self._dead_letter(message, recipient, attempt, f"gave up after {attempt} attempts: {reason}", code, [dispatched])
                    return
                if outcome is Outcome.DEFER and time.monotonic() + (retry_after or 0) > deferred_until:
                    await self._dead_letter(message, recipient, attempt, f"still deferred after {self.settings.max_deferral_seconds:.0f}s: {reason}", code, [dispatched])
                    return
                if outcome is Outcome.DEFER:
                    deferrals += 1
                delay = retry_after if retry_after is not None else backoff_seconds(
                    deferrals if outcome is Outcome.DEFER else attempt,
                    self.settings.backoff_base_seconds,
                    self.settings.backoff_max_seconds,
                )
                retrying = _change(S.DELIVERY_STATUS_RETRYING, attempt, reason, code)
                retrying.next_attempt_time.FromNanoseconds(time.time_ns() + int(delay * 1e9))
                await self._record(message, recipient, [dispatched, retrying])
                await asyncio.sleep(delay)
                if outcome is Outcome.TRANSIENT:
                    attempt += 1
                continue
            sent = _change(reply.status or S.DELIVERY_STATUS_SENT, attempt, at=reply.send_time if reply.HasField("send_time") else None)
            await self._record(message, recipient, [dispatched, sent], reply.platform_message_ids)
            return

    async def _record(
        self,
        message: message_pb2.Message,
        recipient: message_pb2.Recipient,
        changes: Sequence[message_pb2.StatusChange],
        platform_message_ids: Sequence[str] = (),
        new_round: bool = False,
        dead_letter: message_pb2.DeadLetter | None = None,
        skip_recorded: bool = False,
    ) -> None:
        """Append status changes and their stream events in one transaction."""
        async with self.pool.connection() as conn, conn.transaction():
            if dead_letter is not None:
                await store.park_dead_letter(conn, dead_letter)
            updates = await store.record_changes(
                conn, message.message_id, recipient, changes, platform_message_ids, new_round, skip_recorded
            )
            if updates is None:
                log.warning("status for an unknown delivery", extra={"message_id": message.message_id})
                return
            events = []
            for update in updates:
                event = message_pb2.ConversationEvent(conversation_id=message.conversation_id)
                event.occur_time.CopyFrom(update.change.record_time)
                event.delivery_status_changed.CopyFrom(update)
                events.append(event)
            await store.append_events(conn, events)

    async def _fail(self, message, recipient, attempts: int, reason: str, code: str, before: list) -> None:
        """A delivery that can never succeed as it is (a file too large for the platform, a
        quarantined file): FAILED with the reason, and no dead letter to replay."""
        await self._record(message, recipient, [*before, _change(S.DELIVERY_STATUS_FAILED, attempts, reason, code)])
        log.warning("delivery failed", extra={"message_id": message.message_id, "reason": reason})

    async def _dead_letter(self, message, recipient, attempts: int, reason: str, code: str, before: list) -> None:
        failed = _change(S.DELIVERY_STATUS_FAILED, attempts, reason, code)
        parked = _change(S.DELIVERY_STATUS_DEAD_LETTERED, attempts, reason, code)
        dead_letter = message_pb2.DeadLetter(
            dead_letter_id=str(uuid.uuid4()),
            message_id=message.message_id,
            conversation_id=message.conversation_id,
            recipient=recipient,
            reason=reason,
            platform_error_code=code,
            attempt_count=attempts,
            state=message_pb2.DeadLetterState.DEAD_LETTER_STATE_PENDING,
        )
        dead_letter.first_failure_time.CopyFrom((before or [failed])[0].change_time)
        dead_letter.last_failure_time.CopyFrom(failed.change_time)
        event = event_pb2.Event(event_id=str(uuid.uuid4()), conversation_id=message.conversation_id)
        event.occur_time.CopyFrom(failed.change_time)
        event.dead_lettered.dead_letter.CopyFrom(dead_letter)
        event.dead_lettered.message.CopyFrom(message)
        # The dead-letter topic is the durable record; the table indexes it for the API.
        await kafka.publish(self.producer, topics.DEAD_LETTERS, message.conversation_id, event)
        await self._record(message, recipient, [*before, failed, parked], dead_letter=dead_letter)
        log.warning("dead-lettered", extra={"message_id": message.message_id, "reason": reason})

    # Platform status reports ------------------------------------------------------------------

    async def apply_status_report(self, conversation_id: str, report: event_pb2.DeliveryStatusChanged) -> None:
        """A platform's later word on a delivery (delivered, read, failed), published by its
        connector on this conversation's partition, so it comes after the message itself."""
        message = message_pb2.Message(message_id=report.message_id, conversation_id=conversation_id)
        await self._record(message, report.recipient, [report.change], skip_recorded=True)

    # Replays ----------------------------------------------------------------------------

    async def replay(self, replayed: event_pb2.DeadLetterReplayed) -> None:
        message, recipient = replayed.message, replayed.dead_letter.recipient
        async with self.pool.connection() as conn:
            status = next((d.status for d in await store.deliveries_of(conn, message.message_id) if d.key == store.recipient_key(recipient)), None)
        if status == S.DELIVERY_STATUS_DEAD_LETTERED:
            await self._record(
                message, recipient, [_change(S.DELIVERY_STATUS_ACCEPTED, reason="replayed from the dead-letter queue")], new_round=True
            )
        elif status not in _UNFINISHED:  # this replay was handled already (a redelivered record)
            return
        audience = await self.resolver.resolve(message)
        await self._deliver(message, audience, recipient)


def _channel_name(channel: int) -> str:
    return channel_pb2.Channel.Name(channel)
