"""SQL of the delivery queue: claiming the attempts that are due, and recording their outcome.

Lanes: the deliveries of one (webhook, conversation), in seq order. Only a lane's head (its
lowest PENDING seq) may be attempted, so an event never overtakes the previous one of its
conversation. A claimed attempt holds its delivery through a lease; replicas claim with
SKIP LOCKED and never take a leased delivery, so one event is in flight once at a time. If the
holder dies, the lease lapses and the attempt is made again (at-least-once).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from chat4all.webhooks.v1 import message_pb2 as pb
from psycopg_pool import AsyncConnectionPool

PENDING = pb.WEBHOOK_DELIVERY_STATE_PENDING
DELIVERED = pb.WEBHOOK_DELIVERY_STATE_DELIVERED
DEAD_LETTERED = pb.WEBHOOK_DELIVERY_STATE_DEAD_LETTERED

# A pending delivery with no earlier pending delivery in its lane.
_IS_HEAD = """NOT EXISTS (
    SELECT 1 FROM webhook_deliveries p
     WHERE p.state = 1 AND p.webhook_id = d.webhook_id AND p.conversation_id = d.conversation_id AND p.seq < d.seq)"""


@dataclass(frozen=True)
class Attempt:
    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    event_type: int
    url: str
    secret: str
    body: bytes
    number: int  # 1 for the first attempt
    lease_token: uuid.UUID


@dataclass(frozen=True)
class Outcome:
    http_status: int  # 0: no HTTP answer
    error: str  # empty when accepted
    seconds: float

    @property
    def accepted(self) -> bool:
        return 200 <= self.http_status < 300


async def claim_due(pool: AsyncConnectionPool, limit: int, lease_seconds: float, max_attempts: int) -> list[Attempt]:
    """Up to `limit` lane heads whose next attempt is due, each now leased and counted."""
    token = uuid.uuid4()
    async with pool.connection() as conn, conn.transaction():
        # An attempt cut short (its dispatcher died) has no outcome; if it was the last one
        # allowed, the delivery ends here instead of being tried beyond the limit.
        await conn.execute(
            """
            UPDATE webhook_deliveries
               SET state = 3, complete_time = now(), lease_token = NULL, lease_until = NULL, last_http_status = 0,
                   last_error = 'the last attempt was cut short (its dispatcher stopped) and no attempts are left'
             WHERE state = 1 AND lease_until < now() AND attempt_count >= %s
            """,
            (max_attempts,),
        )
        rows = await (
            await conn.execute(
                f"""
                WITH due AS (
                    SELECT d.delivery_id FROM webhook_deliveries d
                     WHERE d.state = 1 AND d.next_attempt_time <= now()
                       AND (d.lease_until IS NULL OR d.lease_until < now())
                       AND {_IS_HEAD}
                     ORDER BY d.next_attempt_time, d.seq
                     LIMIT %(limit)s
                       FOR UPDATE OF d SKIP LOCKED
                )
                UPDATE webhook_deliveries d
                   SET attempt_count = d.attempt_count + 1,
                       lease_token = %(token)s, lease_until = now() + make_interval(secs => %(lease)s)
                  FROM due, webhooks w
                 WHERE d.delivery_id = due.delivery_id AND w.webhook_id = d.webhook_id
                RETURNING d.delivery_id, d.webhook_id, d.event_id, d.event_type, w.url, w.signing_secret, d.payload,
                          d.attempt_count
                """,
                {"limit": limit, "token": token, "lease": lease_seconds},
            )
        ).fetchall()
        if rows:
            await conn.execute(
                "INSERT INTO webhook_delivery_attempts (delivery_id, attempt_number, start_time)"
                " SELECT id, n, now() FROM unnest(%s::uuid[], %s::int[]) AS t(id, n)"
                " ON CONFLICT DO NOTHING",
                ([r[0] for r in rows], [r[7] for r in rows]),
            )
    return [Attempt(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]), r[7], token) for r in rows]


async def record(
    pool: AsyncConnectionPool, attempt: Attempt, outcome: Outcome, state: int, retry_in_seconds: float = 0.0
) -> bool:
    """Store the attempt's outcome and the delivery's new state (PENDING: retried after
    `retry_in_seconds`). False if the lease was lost (the webhook was deleted, or the attempt
    outlived its lease and another one took over), and nothing is written."""
    async with pool.connection() as conn, conn.transaction():
        updated = await conn.execute(
            """
            UPDATE webhook_deliveries
               SET state = %(state)s, last_http_status = %(status)s, last_error = %(error)s,
                   next_attempt_time = CASE WHEN %(state)s = 1 THEN now() + make_interval(secs => %(retry)s) END,
                   complete_time = CASE WHEN %(state)s = 1 THEN NULL ELSE now() END,
                   lease_token = NULL, lease_until = NULL
             WHERE delivery_id = %(id)s AND lease_token = %(token)s
            """,
            {
                "state": state,
                "status": outcome.http_status,
                "error": outcome.error,
                "retry": retry_in_seconds,
                "id": attempt.delivery_id,
                "token": attempt.lease_token,
            },
        )
        if updated.rowcount == 0:
            return False
        await conn.execute(
            "UPDATE webhook_delivery_attempts SET duration_seconds = %s, http_status = %s, error = %s"
            " WHERE delivery_id = %s AND attempt_number = %s",
            (outcome.seconds, outcome.http_status, outcome.error, attempt.delivery_id, attempt.number),
        )
        return True


async def seconds_until_due(pool: AsyncConnectionPool) -> float | None:
    """How long until the next lane head becomes claimable (its retry time, or the end of the
    lease of an attempt in flight), by the database's clock; None if nothing is pending."""
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT extract(epoch FROM min(greatest(d.next_attempt_time, coalesce(d.lease_until, '-infinity')))"
                f" - now()) FROM webhook_deliveries d WHERE d.state = 1 AND {_IS_HEAD}"
            )
        ).fetchone()
    return None if row is None or row[0] is None else float(row[0])
