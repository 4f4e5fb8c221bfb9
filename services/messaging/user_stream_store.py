"""SQL of user event streams (see migrations/0002_user_stream_checkpoints.sql): the
conversation logs read many at a time, where a stream starts in a conversation,
and the checkpoints that keep cursors small."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from chat4all.messaging.v1 import message_pb2
from psycopg import AsyncConnection


async def heads(conn: AsyncConnection, conversation_ids: Iterable[str]) -> dict[str, int]:
    """The last seq of each conversation's log (0 when it has none)."""
    ids = list(conversation_ids)
    if not ids:
        return {}
    rows = await (
        await conn.execute(
            """
            SELECT p.c, coalesce((SELECT max(seq) FROM conversation_events e WHERE e.conversation_id = p.c), 0)
              FROM unnest(%s::uuid[]) AS p(c)
            """,
            (ids,),
        )
    ).fetchall()
    return {str(c): seq for c, seq in rows}


async def starts_after_join(
    conn: AsyncConnection, positions: Iterable[tuple[str, int, datetime]]
) -> dict[str, int]:
    """Where to resume each (conversation, last delivered seq, member's join time): after
    that seq, and after every event that occurred before the join.

    A member gets what happens in a conversation after it joined (AddMember: messages
    accepted after the call), so a conversation joined while the stream was away, or left
    and joined again, starts after the newest event that occurred before the join. With
    continuous membership every event after the stream's position occurred after the
    join, so nothing is skipped. The scan walks back from the newest event and stops at
    the first that occurred before the join, so it reads only what the stream is about to
    deliver anyway.

    Both times come from clocks of different processes (the event's occur_time: a
    message's accept time or the time a status was recorded; the membership's join
    time); only events within their disagreement of the join can land on the wrong side.
    A message in flight at the join (accepted just before it, logged just after) may be
    routed to the new member and then shows on its stream too.
    """
    rows_in = list(positions)
    if not rows_in:
        return {}
    rows = await (
        await conn.execute(
            """
            SELECT p.c, greatest(p.s, coalesce((
                       SELECT e.seq FROM conversation_events e
                        WHERE e.conversation_id = p.c AND e.seq > p.s AND e.occur_time < p.j
                        ORDER BY e.seq DESC LIMIT 1), 0))
              FROM unnest(%s::uuid[], %s::bigint[], %s::timestamptz[]) AS p(c, s, j)
            """,
            ([c for c, _, _ in rows_in], [s for _, s, _ in rows_in], [j for _, _, j in rows_in]),
        )
    ).fetchall()
    return {str(c): seq for c, seq in rows}


async def events_after_each(
    conn: AsyncConnection, positions: dict[str, int], per_conversation: int
) -> dict[str, list[tuple[int, message_pb2.ConversationEvent]]]:
    """Up to `per_conversation` events of each conversation after its position, in seq order.
    One statement for all, and a limit per conversation so a busy one cannot starve the rest."""
    if not positions:
        return {}
    ids = list(positions)
    rows = await (
        await conn.execute(
            """
            SELECT p.c, e.seq, e.event
              FROM unnest(%s::uuid[], %s::bigint[]) AS p(c, s)
              CROSS JOIN LATERAL (
                    SELECT seq, event FROM conversation_events
                     WHERE conversation_id = p.c AND seq > p.s
                     ORDER BY seq LIMIT %s) AS e
             ORDER BY p.c, e.seq
            """,
            (ids, [positions[c] for c in ids], per_conversation),
        )
    ).fetchall()
    found: dict[str, list[tuple[int, message_pb2.ConversationEvent]]] = {}
    for conversation_id, seq, data in rows:
        found.setdefault(str(conversation_id), []).append((seq, message_pb2.ConversationEvent.FromString(data)))
    return found


# Checkpoints ------------------------------------------------------------------------------


async def save_checkpoint(conn: AsyncConnection, user_id: str, checkpoint_id: bytes, payload: bytes) -> None:
    """Store (or keep alive: the retention counts from the last save) a checkpoint."""
    await conn.execute(
        """
        INSERT INTO user_stream_checkpoints (user_id, checkpoint_id, positions)
        VALUES (%s, %s, %s)
        ON CONFLICT (user_id, checkpoint_id) DO UPDATE SET save_time = now()
        """,
        (user_id, checkpoint_id, payload),
    )


async def load_checkpoint(conn: AsyncConnection, user_id: str, checkpoint_id: bytes) -> bytes | None:
    row = await (
        await conn.execute(
            "SELECT positions FROM user_stream_checkpoints WHERE user_id = %s AND checkpoint_id = %s",
            (user_id, checkpoint_id),
        )
    ).fetchone()
    return row[0] if row else None


async def prune_checkpoints(conn: AsyncConnection, retention: timedelta) -> int:
    """Forget checkpoints not saved for `retention`; their cursors then answer OUT_OF_RANGE."""
    cursor = await conn.execute(
        "DELETE FROM user_stream_checkpoints WHERE save_time < now() - %s::interval", (retention,)
    )
    return cursor.rowcount
