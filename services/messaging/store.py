"""SQL of the message store (see migrations/0001_message_store.sql).

The router is the only writer of a conversation's messages, deliveries and
events (it owns the conversation's Kafka partition); the API reads them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from chat4all.messaging.v1 import message_pb2
from psycopg import AsyncConnection

from services.messaging.statuses import advances

EVENTS_CHANNEL = "chat4all_conversation_events"
Status = message_pb2.DeliveryStatus


def recipient_key(recipient: message_pb2.Recipient) -> str:
    return f"{recipient.user_id}|{recipient.channel}|{recipient.external_id}"


@dataclass
class DeliveryRow:
    recipient: message_pb2.Recipient
    status: int
    attempt_count: int

    @property
    def key(self) -> str:
        return recipient_key(self.recipient)


# Events -----------------------------------------------------------------------------------


async def append_event(conn: AsyncConnection, event: message_pb2.ConversationEvent) -> int:
    """Append to the conversation's log at the next seq; wakes stream subscribers on commit."""
    row = await (
        await conn.execute(
            """
            INSERT INTO conversation_events (conversation_id, seq, event, occur_time)
            SELECT %(c)s, coalesce(max(seq), 0) + 1, %(e)s, %(t)s
              FROM conversation_events WHERE conversation_id = %(c)s
            RETURNING seq
            """,
            {"c": event.conversation_id, "e": event.SerializeToString(), "t": event.occur_time.ToDatetime(UTC)},
        )
    ).fetchone()
    await conn.execute("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, event.conversation_id))
    return row[0]


async def append_events(conn: AsyncConnection, events: Sequence[message_pb2.ConversationEvent]) -> None:
    """Append several events of one conversation in one statement, in order."""
    if not events:
        return
    conversation_id = events[0].conversation_id
    await conn.execute(
        """
        INSERT INTO conversation_events (conversation_id, seq, event, occur_time)
        SELECT %(c)s, head.seq + batch.n, batch.event, batch.occur_time
          FROM (SELECT coalesce(max(seq), 0) AS seq FROM conversation_events WHERE conversation_id = %(c)s) AS head,
               unnest(%(e)s::bytea[], %(t)s::timestamptz[]) WITH ORDINALITY AS batch(event, occur_time, n)
        """,
        {
            "c": conversation_id,
            "e": [e.SerializeToString() for e in events],
            "t": [e.occur_time.ToDatetime(UTC) for e in events],
        },
    )
    await conn.execute("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, conversation_id))


async def events_after(
    conn: AsyncConnection, conversation_id: str, after_seq: int, limit: int = 500
) -> list[tuple[int, message_pb2.ConversationEvent]]:
    rows = await (
        await conn.execute(
            "SELECT seq, event FROM conversation_events WHERE conversation_id = %s AND seq > %s ORDER BY seq LIMIT %s",
            (conversation_id, after_seq, limit),
        )
    ).fetchall()
    return [(seq, message_pb2.ConversationEvent.FromString(data)) for seq, data in rows]


async def last_event_seq(conn: AsyncConnection, conversation_id: str) -> int:
    row = await (
        await conn.execute("SELECT coalesce(max(seq), 0) FROM conversation_events WHERE conversation_id = %s", (conversation_id,))
    ).fetchone()
    return row[0]


# Messages ---------------------------------------------------------------------------------


async def insert_message(
    conn: AsyncConnection,
    message: message_pb2.Message,
    seq: int,
    client_id: str | None,
    request_id: str | None,
) -> bool:
    """Store a message once; False when its id (or its client's request_id) is already stored."""
    row = await (
        await conn.execute(
            """
            INSERT INTO messages (message_id, conversation_id, seq, sender_user_id, content, origin,
                                  client_id, request_id, create_time)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT DO NOTHING
            RETURNING 1
            """,
            (
                message.message_id,
                message.conversation_id,
                seq,
                message.sender_user_id or None,
                message.content.SerializeToString(),
                message.origin.SerializeToString(),
                client_id,
                request_id,
                message.create_time.ToDatetime(UTC),
            ),
        )
    ).fetchone()
    return row is not None


async def message_exists(conn: AsyncConnection, message_id: str) -> bool:
    return await (await conn.execute("SELECT 1 FROM messages WHERE message_id = %s", (message_id,))).fetchone() is not None


async def insert_deliveries(
    conn: AsyncConnection, message_id: str, recipients: Sequence[message_pb2.Recipient], change: message_pb2.StatusChange
) -> None:
    await conn.cursor().executemany(
        """
        INSERT INTO deliveries (message_id, recipient_key, recipient, status, history, update_time)
        VALUES (%s, %s, %s, %s, ARRAY[%s::bytea], %s)
        ON CONFLICT DO NOTHING
        """,
        [
            (
                message_id,
                recipient_key(r),
                r.SerializeToString(),
                change.status,
                change.SerializeToString(),
                change.change_time.ToDatetime(UTC),
            )
            for r in recipients
        ],
    )


async def deliveries_of(conn: AsyncConnection, message_id: str) -> list[DeliveryRow]:
    rows = await (
        await conn.execute(
            "SELECT recipient, status, attempt_count FROM deliveries WHERE message_id = %s ORDER BY recipient_key",
            (message_id,),
        )
    ).fetchall()
    return [DeliveryRow(message_pb2.Recipient.FromString(r), s, a) for r, s, a in rows]


async def record_changes(
    conn: AsyncConnection,
    message_id: str,
    recipient: message_pb2.Recipient,
    changes: Sequence[message_pb2.StatusChange],
    platform_message_ids: Sequence[str] = (),
    new_round: bool = False,
    skip_recorded: bool = False,
) -> list[message_pb2.DeliveryUpdate] | None:
    """Append status changes to a delivery's history in one statement; its status moves only
    forward (or back to ACCEPTED when a replay starts a new round). One update per change, each
    with the status it left; None if the delivery is unknown. `skip_recorded` is for platform
    reports: it drops a report of a status the history holds already (a redelivery, a second
    part's report, the platform's own "sent" after ours), so each status appears once."""
    key = recipient_key(recipient)
    row = await (
        await conn.execute(
            f"SELECT status, attempt_count{', history' if skip_recorded else ''} FROM deliveries"
            " WHERE message_id = %s AND recipient_key = %s FOR UPDATE",
            (message_id, key),
        )
    ).fetchone()
    if row is None:
        return None
    status, attempts = row[0], row[1]
    if skip_recorded:
        recorded = {message_pb2.StatusChange.FromString(raw).status for raw in row[2]}
        changes = [change for change in changes if change.status not in recorded]
        if not changes:
            return []
    updates = []
    for index, change in enumerate(changes):
        if (new_round and index == 0) or advances(status, change.status):
            status = change.status
        attempts = 0 if new_round and index == 0 else max(attempts, change.attempt)
        updates.append(message_pb2.DeliveryUpdate(message_id=message_id, recipient=recipient, change=change, current_status=status))
    await conn.execute(
        """
        UPDATE deliveries
           SET status = %s, attempt_count = %s, history = history || %s::bytea[],
               platform_message_ids = platform_message_ids || %s::text[], update_time = %s
         WHERE message_id = %s AND recipient_key = %s
        """,
        (
            status,
            attempts,
            [c.SerializeToString() for c in changes],
            list(platform_message_ids),
            changes[-1].record_time.ToDatetime(UTC),
            message_id,
            key,
        ),
    )
    return updates


async def load_message(conn: AsyncConnection, message_id: str) -> message_pb2.Message | None:
    row = await (
        await conn.execute(
            "SELECT message_id, conversation_id, sender_user_id, content, origin, create_time FROM messages WHERE message_id = %s",
            (message_id,),
        )
    ).fetchone()
    if row is None:
        return None
    [message] = await _with_deliveries(conn, [row])
    return message


async def list_messages(
    conn: AsyncConnection, conversation_id: str, before_seq: int | None, limit: int
) -> list[tuple[int, message_pb2.Message]]:
    """Newest first, strictly older than before_seq (keyset pagination: stable under new writes)."""
    rows = await (
        await conn.execute(
            """
            SELECT message_id, conversation_id, sender_user_id, content, origin, create_time, seq
              FROM messages
             WHERE conversation_id = %s AND seq < %s
             ORDER BY seq DESC
             LIMIT %s
            """,
            (conversation_id, before_seq if before_seq is not None else 2**62, limit),
        )
    ).fetchall()
    messages = await _with_deliveries(conn, [row[:6] for row in rows])
    return [(row[6], message) for row, message in zip(rows, messages)]


async def _with_deliveries(conn: AsyncConnection, rows: list[tuple]) -> list[message_pb2.Message]:
    messages = []
    by_id: dict[uuid.UUID, message_pb2.Message] = {}
    for message_id, conversation_id, sender, content, origin, create_time in rows:
        message = message_pb2.Message(
            message_id=str(message_id),
            conversation_id=str(conversation_id),
            sender_user_id=str(sender) if sender else "",
            content=message_pb2.MessageContent.FromString(content),
            origin=message_pb2.MessageOrigin.FromString(origin),
        )
        message.create_time.FromDatetime(create_time)
        messages.append(message)
        by_id[message_id] = message
    if not by_id:
        return messages
    deliveries = await (
        await conn.execute(
            """
            SELECT message_id, recipient, status, attempt_count, platform_message_ids, history, update_time
              FROM deliveries WHERE message_id = ANY(%s) ORDER BY message_id, recipient_key
            """,
            (list(by_id),),
        )
    ).fetchall()
    for message_id, recipient, status, attempts, platform_ids, history, update_time in deliveries:
        delivery = by_id[message_id].deliveries.add(
            recipient=message_pb2.Recipient.FromString(recipient),
            status=status,
            attempt_count=attempts,
            platform_message_ids=platform_ids,
            history=[message_pb2.StatusChange.FromString(h) for h in history],
        )
        delivery.update_time.FromDatetime(update_time)
    return messages


# Dead letters -------------------------------------------------------------------------------


async def park_dead_letter(conn: AsyncConnection, dead_letter: message_pb2.DeadLetter) -> None:
    await conn.execute(
        """
        INSERT INTO dead_letters (dead_letter_id, message_id, recipient_key, conversation_id, dead_letter, state,
                                  last_failure_time)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        """,
        (
            dead_letter.dead_letter_id,
            dead_letter.message_id,
            recipient_key(dead_letter.recipient),
            dead_letter.conversation_id,
            dead_letter.SerializeToString(),
            dead_letter.state,
            dead_letter.last_failure_time.ToDatetime(UTC),
        ),
    )


def _dead_letter(data: bytes, state: int, replay_time: datetime | None) -> message_pb2.DeadLetter:
    dead_letter = message_pb2.DeadLetter.FromString(data)
    dead_letter.state = state
    if replay_time is not None:
        dead_letter.replay_time.FromDatetime(replay_time)
    return dead_letter


async def list_dead_letters(
    conn: AsyncConnection, conversation_id: str | None, state: int, after: tuple[datetime, str] | None, limit: int
) -> list[message_pb2.DeadLetter]:
    """Most recent failure first; keyset on (last_failure_time, dead_letter_id)."""
    rows = await (
        await conn.execute(
            """
            SELECT dead_letter, state, replay_time
              FROM dead_letters
             WHERE (%(c)s::uuid IS NULL OR conversation_id = %(c)s::uuid)
               AND (%(st)s = 0 OR state = %(st)s)
               AND (%(t)s::timestamptz IS NULL OR (last_failure_time, dead_letter_id) < (%(t)s, %(id)s::uuid))
             ORDER BY last_failure_time DESC, dead_letter_id DESC
             LIMIT %(n)s
            """,
            {"c": conversation_id, "st": state, "t": after[0] if after else None, "id": after[1] if after else None, "n": limit},
        )
    ).fetchall()
    return [_dead_letter(data, st, replayed) for data, st, replayed in rows]


async def dead_letter_conversation(conn: AsyncConnection, dead_letter_id: str) -> str | None:
    row = await (
        await conn.execute("SELECT conversation_id FROM dead_letters WHERE dead_letter_id = %s", (dead_letter_id,))
    ).fetchone()
    return str(row[0]) if row else None


async def lock_dead_letter(conn: AsyncConnection, dead_letter_id: str) -> tuple[message_pb2.DeadLetter, str | None] | None:
    row = await (
        await conn.execute(
            "SELECT dead_letter, state, replay_time, replay_request_id FROM dead_letters WHERE dead_letter_id = %s FOR UPDATE",
            (dead_letter_id,),
        )
    ).fetchone()
    if row is None:
        return None
    data, state, replayed, request_id = row
    return _dead_letter(data, state, replayed), str(request_id) if request_id else None


async def mark_replayed(conn: AsyncConnection, dead_letter_id: str, request_id: str) -> message_pb2.DeadLetter:
    row = await (
        await conn.execute(
            """
            UPDATE dead_letters SET state = %s, replay_time = now(), replay_request_id = %s
             WHERE dead_letter_id = %s
            RETURNING dead_letter, state, replay_time
            """,
            (message_pb2.DeadLetterState.DEAD_LETTER_STATE_REPLAYED, request_id, dead_letter_id),
        )
    ).fetchone()
    return _dead_letter(*row)
