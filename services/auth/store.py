"""The API key tables: keys (hashed) and the CreateApiKey request log.

CreateApiKey runs in one transaction that first claims its (caller, request_id) in
`api_key_requests`, so a retry (or a concurrent duplicate, which waits on the claimed row)
answers with the same key and secret instead of making a second key.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import psycopg
from chat4all.auth.v1 import message_pb2 as pb
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.auth import credentials
from services.runtime.errors import AlreadyExists, NotFound, Unavailable

# The key store cannot be reached (or answer in time): retry, never INTERNAL.
STORE_ERRORS = (psycopg.OperationalError, PoolTimeout)


@dataclass(frozen=True)
class NewKey:
    client_id: str
    display_name: str
    scopes: list[int]  # Scope numbers, sorted, no duplicates
    requests_per_second: int


@dataclass(frozen=True)
class StoredKey:
    """What the front door needs to know about a key, secret hash included."""

    key_id: str
    client_id: str
    scopes: frozenset[int]
    requests_per_second: int  # 0: the deployment's default
    secret_hash: bytes
    revoked: bool


class ApiKeyStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.pool.connection() as conn:
                yield conn
        except STORE_ERRORS as error:
            raise Unavailable(f"the key store cannot be reached ({type(error).__name__}); retry") from None

    async def create_key(self, caller: str, request_id: uuid.UUID, digest: bytes, new: NewKey) -> tuple[pb.ApiKey, str]:
        """Store a new key and return it with its secret; an earlier identical request's key
        and secret when `request_id` was used before by `caller`."""
        secret = credentials.new_secret()
        request_key = credentials.request_key(caller, request_id)
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO api_key_requests (request_key, request_hash, key_id, sealed_secret)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (request_key) DO NOTHING",
                (request_key, digest, secret.key_id, credentials.seal(secret, caller, request_id)),
            )
            if cursor.rowcount == 0:
                # A new statement sees the row committed by the request we waited on.
                row = await (
                    await conn.execute(
                        "SELECT request_hash, key_id, sealed_secret FROM api_key_requests WHERE request_key = %s",
                        (request_key,),
                    )
                ).fetchone()
                assert row is not None
                earlier_digest, key_id, sealed = row
                if bytes(earlier_digest) != digest:
                    raise AlreadyExists(f"request_id {request_id} was already used for a different request")
                earlier = credentials.unseal(bytes(sealed), key_id, caller, request_id)
                return await _read_key(conn, key_id), earlier.text
            await conn.execute(
                "INSERT INTO api_keys (key_id, client_id, display_name, scopes, requests_per_second, secret_hash)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    secret.key_id,
                    new.client_id,
                    new.display_name,
                    new.scopes,
                    new.requests_per_second,
                    credentials.secret_hash(secret.text),
                ),
            )
            return await _read_key(conn, secret.key_id), secret.text

    async def revoke_key(self, key_id: str, client_id: str | None = None) -> pb.ApiKey:
        """Set the key's revoke_time, once: revoking again keeps the first time. With
        `client_id`, another client's key is NOT_FOUND, like a key that does not exist."""
        sql, params = "UPDATE api_keys SET revoke_time = coalesce(revoke_time, now()) WHERE key_id = %s", [key_id]
        if client_id is not None:
            sql += " AND client_id = %s"
            params.append(client_id)
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(sql, params)
            if cursor.rowcount == 0:
                raise NotFound(f"key_id: no key {key_id}")
            return await _read_key(conn, key_id)

    async def list_keys(
        self, client_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> tuple[list[pb.ApiKey], tuple[datetime, str] | None]:
        """One page, newest first (of one client's keys, or everyone's when `client_id` is
        empty), and the position to continue after (None on the last page)."""
        where, params = [], []
        if client_id:
            where.append("client_id = %s")
            params.append(client_id)
        if after is not None:
            where.append("(create_time, key_id) < (%s, %s)")
            params += list(after)
        sql = f"SELECT {_COLUMNS} FROM api_keys"
        if where:
            sql += " WHERE " + " AND ".join(where)
        async with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            # One more row than asked tells whether another page follows.
            await cur.execute(sql + " ORDER BY create_time DESC, key_id DESC LIMIT %s", [*params, limit + 1])
            rows = await cur.fetchall()
        page = rows[:limit]
        last = page[-1] if len(rows) > limit else None
        return [_api_key(r) for r in page], (last["create_time"], last["key_id"]) if last else None

    async def find_key(self, key_id: str) -> StoredKey | None:
        async with self._connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT client_id, scopes, requests_per_second, secret_hash, revoke_time IS NOT NULL"
                    " FROM api_keys WHERE key_id = %s",
                    (key_id,),
                )
            ).fetchone()
        if row is None:
            return None
        client_id, scopes, requests_per_second, secret_hash, revoked = row
        return StoredKey(key_id, client_id, frozenset(scopes), requests_per_second, bytes(secret_hash), revoked)


_COLUMNS = "key_id, client_id, display_name, scopes, requests_per_second, create_time, revoke_time"


async def _read_key(conn: AsyncConnection, key_id: str) -> pb.ApiKey:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = %s", (key_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"key_id: no key {key_id}")
    return _api_key(row)


def _api_key(row: dict) -> pb.ApiKey:
    key = pb.ApiKey(
        key_id=row["key_id"],
        client_id=row["client_id"],
        display_name=row["display_name"],
        scopes=row["scopes"],
        requests_per_second=row["requests_per_second"],
    )
    key.create_time.FromDatetime(row["create_time"])
    if row["revoke_time"] is not None:
        key.revoke_time.FromDatetime(row["revoke_time"])
    return key
