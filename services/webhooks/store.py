"""The API's side of the webhook tables: webhooks, their idempotency log, the delivery log.

Every change runs in one transaction that first claims its (client, request_id) in
`webhook_requests`, so a retry (or a concurrent duplicate, which waits on the claimed row)
answers as the first request did instead of changing anything twice. Every read is scoped to
the calling client: another client's webhook is NOT_FOUND, never PERMISSION_DENIED, so ids do
not leak. `client` is the calling client, None for an internal call (services/runtime/tenancy.py),
which sees every webhook; what it creates is unowned ('') and its request ids are its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from chat4all.webhooks.v1 import message_pb2 as pb
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.runtime.errors import AlreadyExists, NotFound
from services.runtime.tenancy import owner_for_new


@dataclass(frozen=True)
class NewWebhook:
    url: str
    description: str
    conversation_ids: list[uuid.UUID]  # conversation-scoped: its conversations; else empty
    event_types: list[int]
    user_id: uuid.UUID | None = None  # user-scoped: the user whose conversations it follows


class WebhookStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    # Changes ---------------------------------------------------------------------------

    async def earlier_create(
        self, client: str | None, request_id: uuid.UUID, digest: bytes
    ) -> tuple[pb.Webhook, str] | None:
        """The answer to an earlier identical CreateWebhook, if there was one; lets a retry
        answer without asking MessageService again."""
        async with self.pool.connection() as conn:
            earlier = await _earlier(conn, owner_for_new(client), request_id, "CreateWebhook", digest)
            return None if earlier is None else await _read_webhook(conn, client, earlier, with_secret=True)

    async def create_webhook(
        self,
        client: str | None,
        request_id: uuid.UUID,
        digest: bytes,
        new: NewWebhook,
        cursors: dict[uuid.UUID, str],
        secret: str,
    ) -> tuple[pb.Webhook, str]:
        """Store the webhook with its stream sources, one per conversation or one for its user,
        each starting at its cursor in `cursors` (keyed by conversation id, or by the user id:
        where that stream stood when asked), and return it with its secret."""
        webhook_id = uuid.uuid4()
        owner = owner_for_new(client)
        async with self.pool.connection() as conn, conn.transaction():
            earlier = await _claim(conn, owner, request_id, "CreateWebhook", digest, webhook_id)
            if earlier is not None:
                return await _read_webhook(conn, client, earlier, with_secret=True)
            await conn.execute(
                "INSERT INTO webhooks (webhook_id, client_id, url, description, event_types, signing_secret)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (webhook_id, owner, new.url, new.description, new.event_types, secret),
            )
            if new.user_id is not None:
                await conn.execute(
                    "INSERT INTO webhook_user_sources (webhook_id, user_id, cursor) VALUES (%s, %s, %s)",
                    (webhook_id, new.user_id, cursors[new.user_id]),
                )
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO webhook_sources (webhook_id, conversation_id, position, cursor) VALUES (%s, %s, %s, %s)",
                    [(webhook_id, c, n, cursors[c]) for n, c in enumerate(new.conversation_ids)],
                )
            return await _read_webhook(conn, client, webhook_id, with_secret=True)

    async def delete_webhook(self, client: str | None, request_id: uuid.UUID, digest: bytes, webhook_id: uuid.UUID) -> None:
        """Delete the webhook, its sources and its deliveries (cascade): once this commits no
        attempt can be claimed for it."""
        async with self.pool.connection() as conn, conn.transaction():
            if await _claim(conn, owner_for_new(client), request_id, "DeleteWebhook", digest, webhook_id) is not None:
                return
            visible, params = _visible(client)
            cursor = await conn.execute(f"DELETE FROM webhooks WHERE webhook_id = %s{visible}", (webhook_id, *params))
            if cursor.rowcount == 0:
                raise NotFound(f"webhook_id: no webhook {webhook_id}")  # rolls the claim back too

    # Reads -------------------------------------------------------------------------------

    async def get_webhook(self, client: str | None, webhook_id: uuid.UUID) -> pb.Webhook:
        async with self.pool.connection() as conn:
            webhook, _ = await _read_webhook(conn, client, webhook_id)
            return webhook

    async def list_webhooks(
        self, client: str | None, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> tuple[list[pb.Webhook], tuple[datetime, uuid.UUID] | None]:
        """One page, newest first, and the position to continue after (None on the last page)."""
        visible, params = _visible(client)
        where = "TRUE" + visible
        if after is not None:
            where += " AND (create_time, webhook_id) < (%s, %s)"
            params += list(after)
        async with self.pool.connection() as conn:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE {where}"
                    " ORDER BY create_time DESC, webhook_id DESC LIMIT %s",
                    [*params, limit + 1],  # one more tells whether another page follows
                )
                rows = await cur.fetchall()
            page = rows[:limit]
            scopes = await _read_scopes(conn, [r["webhook_id"] for r in page])
        webhooks = [_webhook(r, scopes[r["webhook_id"]]) for r in page]
        last = page[-1] if len(rows) > limit else None
        return webhooks, (last["create_time"], last["webhook_id"]) if last else None

    async def list_deliveries(
        self, client: str | None, webhook_id: uuid.UUID, state: int, limit: int, before_seq: int | None
    ) -> tuple[list[pb.WebhookDelivery], int | None]:
        """One page of the delivery log, newest first, and the seq to continue before."""
        where, params = "webhook_id = %s", [webhook_id]
        if state:
            where += " AND state = %s"
            params.append(state)
        if before_seq is not None:
            where += " AND seq < %s"
            params.append(before_seq)
        async with self.pool.connection() as conn:
            await _require_webhook(conn, client, webhook_id)
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    "SELECT delivery_id, seq, webhook_id, event_id, event_type, conversation_id, state, attempt_count,"
                    " last_http_status, last_error, create_time, next_attempt_time, complete_time"
                    f" FROM webhook_deliveries WHERE {where} ORDER BY seq DESC LIMIT %s",
                    [*params, limit + 1],
                )
                rows = await cur.fetchall()
                page = rows[:limit]
                await cur.execute(
                    "SELECT delivery_id, attempt_number, start_time, duration_seconds, http_status, error"
                    " FROM webhook_delivery_attempts WHERE delivery_id = ANY(%s) ORDER BY delivery_id, attempt_number",
                    ([r["delivery_id"] for r in page],),
                )
                attempts: dict[uuid.UUID, list[pb.WebhookDeliveryAttempt]] = {}
                for a in await cur.fetchall():
                    attempts.setdefault(a["delivery_id"], []).append(_attempt(a))
        deliveries = [_delivery(r, attempts.get(r["delivery_id"], [])) for r in page]
        return deliveries, page[-1]["seq"] if len(rows) > limit else None


# Idempotency -------------------------------------------------------------------------------


async def _claim(
    conn: AsyncConnection, client_id: str, request_id: uuid.UUID, method: str, digest: bytes, webhook_id: uuid.UUID
) -> uuid.UUID | None:
    """Claim request_id for this request; returns the webhook of an earlier identical request."""
    cursor = await conn.execute(
        "INSERT INTO webhook_requests (client_id, request_id, method, request_hash, webhook_id)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (client_id, request_id) DO NOTHING",
        (client_id, request_id, method, digest, webhook_id),
    )
    if cursor.rowcount == 1:
        return None
    # A new statement sees the row committed by the request we waited on.
    earlier = await _earlier(conn, client_id, request_id, method, digest)
    assert earlier is not None
    return earlier


async def _earlier(
    conn: AsyncConnection, client_id: str, request_id: uuid.UUID, method: str, digest: bytes
) -> uuid.UUID | None:
    row = await (
        await conn.execute(
            "SELECT method, request_hash, webhook_id FROM webhook_requests WHERE client_id = %s AND request_id = %s",
            (client_id, request_id),
        )
    ).fetchone()
    if row is None:
        return None
    earlier_method, earlier_digest, webhook_id = row
    if earlier_method != method or bytes(earlier_digest) != digest:
        raise AlreadyExists(f"request_id {request_id} was already used for a different request ({earlier_method})")
    return webhook_id


# Rows to messages --------------------------------------------------------------------------

_WEBHOOK_COLUMNS = "webhook_id, url, description, event_types, signing_secret, create_time"


def _visible(client: str | None) -> tuple[str, list[str]]:
    """The condition (to append) and its parameters that keep a client to its own webhooks;
    nothing for an internal caller."""
    return ("", []) if client is None else (" AND client_id = %s", [client])


async def _require_webhook(conn: AsyncConnection, client: str | None, webhook_id: uuid.UUID) -> None:
    visible, params = _visible(client)
    row = await (
        await conn.execute(f"SELECT 1 FROM webhooks WHERE webhook_id = %s{visible}", (webhook_id, *params))
    ).fetchone()
    if row is None:
        raise NotFound(f"webhook_id: no webhook {webhook_id}")


async def _read_webhook(
    conn: AsyncConnection, client: str | None, webhook_id: uuid.UUID, with_secret: bool = False
) -> tuple[pb.Webhook, str]:
    visible, params = _visible(client)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE webhook_id = %s{visible}", (webhook_id, *params)
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"webhook_id: no webhook {webhook_id}")
    scopes = await _read_scopes(conn, [webhook_id])
    return _webhook(row, scopes[webhook_id]), row["signing_secret"] if with_secret else ""


async def _read_scopes(conn: AsyncConnection, webhook_ids: list[uuid.UUID]) -> dict[uuid.UUID, pb.WebhookFilter]:
    """Each webhook's filter scope, read from its sources: its conversations in the order the
    client gave them, or its user."""
    found = {webhook_id: pb.WebhookFilter() for webhook_id in webhook_ids}
    if not webhook_ids:
        return found
    rows = await (
        await conn.execute(
            "SELECT webhook_id, conversation_id FROM webhook_sources WHERE webhook_id = ANY(%s)"
            " ORDER BY webhook_id, position",
            (webhook_ids,),
        )
    ).fetchall()
    for webhook_id, conversation_id in rows:
        found[webhook_id].conversations.conversation_ids.append(str(conversation_id))
    rows = await (
        await conn.execute("SELECT webhook_id, user_id FROM webhook_user_sources WHERE webhook_id = ANY(%s)", (webhook_ids,))
    ).fetchall()
    for webhook_id, user_id in rows:
        found[webhook_id].user_id = str(user_id)
    return found


def _webhook(row: dict, scope: pb.WebhookFilter) -> pb.Webhook:
    webhook = pb.Webhook(
        webhook_id=str(row["webhook_id"]), url=row["url"], description=row["description"], filter=scope
    )
    webhook.filter.event_types.extend(row["event_types"])
    webhook.create_time.FromDatetime(row["create_time"])
    return webhook


def _delivery(row: dict, attempts: list[pb.WebhookDeliveryAttempt]) -> pb.WebhookDelivery:
    delivery = pb.WebhookDelivery(
        delivery_id=str(row["delivery_id"]),
        webhook_id=str(row["webhook_id"]),
        event_id=str(row["event_id"]),
        event_type=row["event_type"],
        conversation_id=str(row["conversation_id"]),
        state=row["state"],
        attempt_count=row["attempt_count"],
        last_http_status=row["last_http_status"],
        last_error=row["last_error"],
        attempts=attempts,
    )
    delivery.create_time.FromDatetime(row["create_time"])
    if row["state"] == pb.WEBHOOK_DELIVERY_STATE_PENDING and row["next_attempt_time"] is not None:
        delivery.next_attempt_time.FromDatetime(row["next_attempt_time"])
    if row["complete_time"] is not None:
        delivery.complete_time.FromDatetime(row["complete_time"])
    return delivery


def _attempt(row: dict) -> pb.WebhookDeliveryAttempt:
    attempt = pb.WebhookDeliveryAttempt(
        attempt_number=row["attempt_number"], http_status=row["http_status"], error=row["error"]
    )
    attempt.start_time.FromDatetime(row["start_time"])
    if row["duration_seconds"] is not None:
        attempt.duration.FromNanoseconds(int(row["duration_seconds"] * 1e9))
    return attempt
