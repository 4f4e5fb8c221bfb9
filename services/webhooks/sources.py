"""SQL of the stream sources: which replica follows which stream for which webhook, where each
one stands, and queueing an event together with moving past it.

Two kinds, one table each: a conversation-scoped webhook has a source per conversation
(webhook_sources, read with StreamConversationEvents), a user-scoped webhook one for its user
(webhook_user_sources, read with StreamUserEvents). Both are leased, moved and queued alike.

A replica holds a source through a lease it renews on every scan; a source whose lease lapsed
(its replica died) is taken over by the next scan of any replica. Every cursor move checks the
lease in the same transaction, so a replica that lost a source cannot move its cursor back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from chat4all.messaging.v1 import message_pb2 as messaging_pb
from chat4all.webhooks.v1 import message_pb2 as pb
from psycopg_pool import AsyncConnectionPool

from services.webhooks import payloads


@dataclass(frozen=True)
class Source:
    """One stream followed for one webhook (a ConversationSource or a UserSource)."""

    webhook_id: uuid.UUID
    cursor: str  # where the stream resumes: after the last event queued or skipped
    event_types: frozenset[int]  # empty: every type

    # Moves the cursor, if this replica still holds the lease: (cursor, *row, owner).
    _MOVE: ClassVar[str]

    def wants(self, event_type: int) -> bool:
        # UNSPECIFIED: an event case newer than this service; never sent as UNSPECIFIED.
        return event_type != pb.WEBHOOK_EVENT_TYPE_UNSPECIFIED and (not self.event_types or event_type in self.event_types)

    @property
    def key(self) -> tuple:
        raise NotImplementedError

    @property
    def log_fields(self) -> dict[str, str]:
        """The ids a log line names the source by."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        """Names the source in task names and errors, e.g. "webhook <id> user <id>"."""
        return " ".join(f"{name.removesuffix('_id')} {value}" for name, value in self.log_fields.items())

    def lane(self, event: messaging_pb.ConversationEvent) -> uuid.UUID:
        """The conversation whose delivery lane the event joins (lanes keep conversation order)."""
        raise NotImplementedError

    def _row(self) -> tuple:
        raise NotImplementedError


@dataclass(frozen=True)
class ConversationSource(Source):
    conversation_id: uuid.UUID

    _MOVE = "UPDATE webhook_sources SET cursor = %s WHERE webhook_id = %s AND conversation_id = %s AND lease_owner = %s"

    @property
    def key(self) -> tuple:
        return "conversation", self.webhook_id, self.conversation_id

    @property
    def log_fields(self) -> dict[str, str]:
        return {"webhook_id": str(self.webhook_id), "conversation_id": str(self.conversation_id)}

    def lane(self, event: messaging_pb.ConversationEvent) -> uuid.UUID:
        return self.conversation_id

    def _row(self) -> tuple:
        return self.webhook_id, self.conversation_id


@dataclass(frozen=True)
class UserSource(Source):
    user_id: uuid.UUID
    # The client that created the webhook (None: an internal call). Its user stream is read on
    # that client's behalf, so it never carries a conversation of another client.
    client: str | None = None

    _MOVE = "UPDATE webhook_user_sources SET cursor = %s WHERE webhook_id = %s AND lease_owner = %s"

    @property
    def key(self) -> tuple:
        return "user", self.webhook_id, self.user_id

    @property
    def log_fields(self) -> dict[str, str]:
        return {"webhook_id": str(self.webhook_id), "user_id": str(self.user_id)}

    def lane(self, event: messaging_pb.ConversationEvent) -> uuid.UUID:
        # One user stream mixes conversations; it keeps each one's order, and so do the lanes.
        return uuid.UUID(event.conversation_id)

    def _row(self) -> tuple:
        return (self.webhook_id,)


class SourceLost(Exception):
    """The source is no longer ours: its webhook was deleted or another replica took it over."""


# Renews our leases and takes every source of the table nobody holds.
_HOLD = """
    UPDATE {table} s
       SET lease_owner = %(owner)s, lease_until = now() + make_interval(secs => %(lease)s)
      FROM webhooks w
     WHERE w.webhook_id = s.webhook_id
       AND (s.lease_owner = %(owner)s OR s.lease_owner IS NULL OR s.lease_until < now())
    RETURNING s.webhook_id, s.{scope}, s.cursor, w.event_types, w.client_id
"""


async def hold(pool: AsyncConnectionPool, owner: str, lease_seconds: float) -> list[Source]:
    """Renew our leases and take every source nobody holds; returns all we hold now."""
    params = {"owner": owner, "lease": lease_seconds}
    async with pool.connection() as conn:
        conversations = await (await conn.execute(_HOLD.format(table="webhook_sources", scope="conversation_id"), params)).fetchall()
        users = await (await conn.execute(_HOLD.format(table="webhook_user_sources", scope="user_id"), params)).fetchall()
    return [
        *(ConversationSource(w, cursor, frozenset(types), conversation_id=c) for w, c, cursor, types, _ in conversations),
        *(UserSource(w, cursor, frozenset(types), user_id=u, client=client or None) for w, u, cursor, types, client in users),
    ]


async def release(pool: AsyncConnectionPool, owner: str) -> None:
    """Give our sources up (graceful stop), so a restart or another replica takes them at once."""
    async with pool.connection() as conn:
        for table in ("webhook_sources", "webhook_user_sources"):
            await conn.execute(f"UPDATE {table} SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = %s", (owner,))


async def queue_event(
    pool: AsyncConnectionPool, owner: str, source: Source, event: messaging_pb.ConversationEvent
) -> bool:
    """Move the source past `event`, queueing it for delivery if the webhook wants it, in one
    transaction: a restart resumes right after the last queued event. True if queued now."""
    payload = payloads.payload(source.webhook_id, event)
    lane = source.lane(event)
    async with pool.connection() as conn, conn.transaction():
        await _move(conn, owner, source, event.cursor)
        if not source.wants(payload.event_type):
            return False
        cursor = await conn.execute(
            "INSERT INTO webhook_deliveries"
            " (delivery_id, webhook_id, conversation_id, event_id, event_type, payload, next_attempt_time)"
            " VALUES (%s, %s, %s, %s, %s, %s, now()) ON CONFLICT (webhook_id, event_id) DO NOTHING",
            (uuid.uuid4(), source.webhook_id, lane, payload.event_id, payload.event_type, payload.body),
        )
        return cursor.rowcount == 1


async def move_cursor(pool: AsyncConnectionPool, owner: str, source: Source, cursor: str) -> None:
    async with pool.connection() as conn, conn.transaction():
        await _move(conn, owner, source, cursor)


async def _move(conn, owner: str, source: Source, cursor: str) -> None:
    # Locks the source row first: a concurrent takeover or delete waits for us, or we for it.
    moved = await conn.execute(source._MOVE, (cursor, *source._row(), owner))
    if moved.rowcount == 0:
        raise SourceLost(source.label)
