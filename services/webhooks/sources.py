"""SQL of the stream sources: which replica follows which (webhook, conversation) stream, where
each one stands, and queueing an event together with moving past it.

A replica holds a source through a lease it renews on every scan; a source whose lease lapsed
(its replica died) is taken over by the next scan of any replica. Every cursor move checks the
lease in the same transaction, so a replica that lost a source cannot move its cursor back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from chat4all.messaging.v1 import message_pb2 as messaging_pb
from chat4all.webhooks.v1 import message_pb2 as pb
from psycopg_pool import AsyncConnectionPool

from services.webhooks import payloads


@dataclass(frozen=True)
class Source:
    webhook_id: uuid.UUID
    conversation_id: uuid.UUID
    cursor: str  # where the stream resumes: after the last event queued or skipped
    event_types: frozenset[int]  # empty: every type

    @property
    def key(self) -> tuple[uuid.UUID, uuid.UUID]:
        return self.webhook_id, self.conversation_id

    def wants(self, event_type: int) -> bool:
        # UNSPECIFIED: an event case newer than this service; never sent as UNSPECIFIED.
        return event_type != pb.WEBHOOK_EVENT_TYPE_UNSPECIFIED and (not self.event_types or event_type in self.event_types)


class SourceLost(Exception):
    """The source is no longer ours: its webhook was deleted or another replica took it over."""


async def hold(pool: AsyncConnectionPool, owner: str, lease_seconds: float) -> list[Source]:
    """Renew our leases and take every source nobody holds; returns all we hold now."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                """
                UPDATE webhook_sources s
                   SET lease_owner = %(owner)s, lease_until = now() + make_interval(secs => %(lease)s)
                  FROM webhooks w
                 WHERE w.webhook_id = s.webhook_id
                   AND (s.lease_owner = %(owner)s OR s.lease_owner IS NULL OR s.lease_until < now())
                RETURNING s.webhook_id, s.conversation_id, s.cursor, w.event_types
                """,
                {"owner": owner, "lease": lease_seconds},
            )
        ).fetchall()
    return [Source(w, c, cursor, frozenset(types)) for w, c, cursor, types in rows]


async def release(pool: AsyncConnectionPool, owner: str) -> None:
    """Give our sources up (graceful stop), so a restart or another replica takes them at once."""
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE webhook_sources SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = %s", (owner,)
        )


async def queue_event(
    pool: AsyncConnectionPool, owner: str, source: Source, event: messaging_pb.ConversationEvent
) -> bool:
    """Move the source past `event`, queueing it for delivery if the webhook wants it, in one
    transaction: a restart resumes right after the last queued event. True if queued now."""
    payload = payloads.payload(source.webhook_id, event)
    async with pool.connection() as conn, conn.transaction():
        await _move(conn, owner, source, event.cursor)
        if not source.wants(payload.event_type):
            return False
        cursor = await conn.execute(
            "INSERT INTO webhook_deliveries"
            " (delivery_id, webhook_id, conversation_id, event_id, event_type, payload, next_attempt_time)"
            " VALUES (%s, %s, %s, %s, %s, %s, now()) ON CONFLICT (webhook_id, event_id) DO NOTHING",
            (uuid.uuid4(), source.webhook_id, source.conversation_id, payload.event_id, payload.event_type, payload.body),
        )
        return cursor.rowcount == 1


async def move_cursor(pool: AsyncConnectionPool, owner: str, source: Source, cursor: str) -> None:
    async with pool.connection() as conn, conn.transaction():
        await _move(conn, owner, source, cursor)


async def _move(conn, owner: str, source: Source, cursor: str) -> None:
    # Locks the source row first: a concurrent takeover or delete waits for us, or we for it.
    moved = await conn.execute(
        "UPDATE webhook_sources SET cursor = %s WHERE webhook_id = %s AND conversation_id = %s AND lease_owner = %s",
        (cursor, source.webhook_id, source.conversation_id, owner),
    )
    if moved.rowcount == 0:
        raise SourceLost(f"webhook {source.webhook_id} conversation {source.conversation_id}")
