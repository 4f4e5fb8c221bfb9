"""The users' tables: users, the identities linked to them, and the request log.

Every change runs in one transaction that first claims its request_id in
`user_requests`, so a retry (or a concurrent duplicate, which waits on the
claimed row) answers with the user instead of changing anything twice.

Every user belongs to a client (`owner_client_id`, services/runtime/tenancy.py), and so do
its identities: `caller` is the calling client (None: an internal call), and a user of
another client is NOT_FOUND exactly like a user that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from chat4all.channel.v1 import channel_pb2
from chat4all.users.v1 import message_pb2
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.runtime.errors import AlreadyExists, FailedPrecondition, NotFound, Unavailable
from services.runtime.tenancy import may_touch

# Merges form chains only if a survivor is merged again; follow a few hops, never loop.
MAX_MERGE_HOPS = 16


@dataclass(frozen=True)
class Identity:
    channel: int
    external_id: str
    display_name: str = ""

    @property
    def label(self) -> str:
        return f"{channel_pb2.Channel.Name(self.channel)}/{self.external_id}"


class UserStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    # Changes ---------------------------------------------------------------------------

    async def create_user(
        self,
        request_id: uuid.UUID,
        digest: bytes,
        owner: str,
        display_name: str,
        preferred_channel: int,
        identities: list[Identity],
    ) -> message_pb2.User:
        user_id = uuid.uuid4()
        async with self.pool.connection() as conn, conn.transaction():
            earlier = await claim_request(conn, request_id, "CreateUser", digest, user_id)
            if earlier is not None:
                return await read_user(conn, earlier)
            await conn.execute(
                "INSERT INTO users (user_id, display_name, preferred_channel, owner_client_id) VALUES (%s, %s, %s, %s)",
                (user_id, display_name, preferred_channel, owner),
            )
            # One order for every transaction, so two requests linking the same identities
            # wait on each other instead of deadlocking.
            for identity in sorted(identities, key=lambda i: (i.channel, i.external_id)):
                await _link(conn, user_id, owner, identity)
            return await read_user(conn, user_id)

    async def link_identity(
        self, request_id: uuid.UUID, digest: bytes, user_id: uuid.UUID, identity: Identity, caller: str | None
    ) -> tuple[str, message_pb2.User]:
        """The user's owner (whose identity it now is) and the user."""
        async with self.pool.connection() as conn, conn.transaction():
            earlier = await claim_request(conn, request_id, "LinkIdentity", digest, user_id)
            if earlier is not None:
                return await read_owned_user(conn, earlier)
            merged_into, owner = await _lock_user(conn, user_id, caller)
            if merged_into is not None:
                raise FailedPrecondition(
                    f"user_id: user {user_id} was merged into {merged_into}; link the identity to that user"
                )
            await _link(conn, user_id, owner, identity)
            return await read_owned_user(conn, user_id)

    async def unlink_identity(
        self,
        request_id: uuid.UUID,
        digest: bytes,
        user_id: uuid.UUID,
        channel: int,
        external_id: str,
        caller: str | None,
    ) -> tuple[str, message_pb2.User]:
        """The user's owner (whose identity it was) and the user."""
        async with self.pool.connection() as conn, conn.transaction():
            earlier = await claim_request(conn, request_id, "UnlinkIdentity", digest, user_id)
            if earlier is not None:
                return await read_owned_user(conn, earlier)
            await _lock_user(conn, user_id, caller)
            cursor = await conn.execute(
                "DELETE FROM user_identities WHERE channel = %s AND external_id = %s AND user_id = %s",
                (channel, external_id, user_id),
            )
            if cursor.rowcount == 0:
                label = Identity(channel, external_id).label
                raise NotFound(f"identity {label} is not linked to user {user_id}")
            return await read_owned_user(conn, user_id)

    # Reads -------------------------------------------------------------------------------

    async def get_owned_user(self, user_id: uuid.UUID) -> tuple[str, message_pb2.User]:
        async with self.pool.connection() as conn:
            return await read_owned_user(conn, user_id)

    async def resolve_identity(self, owner: str, channel: int, external_id: str) -> message_pb2.User:
        """The user holding the identity among `owner`'s users."""
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT user_id FROM user_identities WHERE owner_client_id = %s AND channel = %s AND external_id = %s",
                    (owner, channel, external_id),
                )
            ).fetchone()
            if row is None:
                raise NotFound(f"no user has identity {Identity(channel, external_id).label}")
            user = await read_user(conn, row[0])
            for _ in range(MAX_MERGE_HOPS):
                if not user.merged_into_user_id:
                    return user
                user = await read_user(conn, uuid.UUID(user.merged_into_user_id))
            raise FailedPrecondition(f"user {row[0]} is merged through more than {MAX_MERGE_HOPS} users")


async def claim_request(
    conn: AsyncConnection, request_id: uuid.UUID, method: str, digest: bytes, user_id: uuid.UUID
) -> uuid.UUID | None:
    """Claim request_id for this request; returns the user of an earlier identical request."""
    cursor = await conn.execute(
        "INSERT INTO user_requests (request_id, method, request_hash, user_id) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (request_id) DO NOTHING",
        (request_id, method, digest, user_id),
    )
    if cursor.rowcount == 1:
        return None
    # A new statement sees the row committed by the request we waited on.
    row = await (
        await conn.execute("SELECT method, request_hash, user_id FROM user_requests WHERE request_id = %s", (request_id,))
    ).fetchone()
    assert row is not None
    earlier_method, earlier_digest, earlier_user = row
    if earlier_method != method or bytes(earlier_digest) != digest:
        raise AlreadyExists(f"request_id {request_id} was already used for a different request ({earlier_method})")
    return earlier_user


async def _lock_user(conn: AsyncConnection, user_id: uuid.UUID, caller: str | None) -> tuple[uuid.UUID | None, str]:
    """Lock the user against concurrent changes (and a merge); returns merged_into_user_id and
    the owner. NOT_FOUND for a user the caller may not touch."""
    row = await (
        await conn.execute(
            "SELECT merged_into_user_id, owner_client_id FROM users WHERE user_id = %s FOR UPDATE", (user_id,)
        )
    ).fetchone()
    if row is None or not may_touch(caller, row[1]):
        raise NotFound(f"user_id: no user {user_id}")
    return row[0], row[1]


async def _link(conn: AsyncConnection, user_id: uuid.UUID, owner: str, identity: Identity) -> None:
    """Link an identity to the user (of `owner`); a no-op if it is already theirs."""
    # Two attempts: the holder seen by a conflicting insert may unlink it before we read who it is.
    for _ in range(2):
        cursor = await conn.execute(
            "INSERT INTO user_identities (owner_client_id, channel, external_id, user_id, display_name)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (owner_client_id, channel, external_id) DO NOTHING",
            (owner, identity.channel, identity.external_id, user_id, identity.display_name),
        )
        if cursor.rowcount == 1:
            return
        # Someone holds it; after waiting on their insert, this new statement sees who.
        row = await (
            await conn.execute(
                "SELECT user_id FROM user_identities WHERE owner_client_id = %s AND channel = %s AND external_id = %s",
                (owner, identity.channel, identity.external_id),
            )
        ).fetchone()
        if row is None:
            continue
        if row[0] != user_id:
            raise AlreadyExists(f"identity {identity.label} is already linked to user {row[0]}")
        return
    raise Unavailable(f"identity {identity.label} changed owner during the request; retry")


async def read_user(conn: AsyncConnection, user_id: uuid.UUID) -> message_pb2.User:
    return (await read_owned_user(conn, user_id))[1]


async def read_owned_user(conn: AsyncConnection, user_id: uuid.UUID) -> tuple[str, message_pb2.User]:
    """The user's owner and the user."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT user_id, display_name, preferred_channel, merged_into_user_id, create_time, owner_client_id"
            " FROM users WHERE user_id = %s",
            (user_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"user_id: no user {user_id}")
        await cur.execute(
            "SELECT channel, external_id, display_name, link_time FROM user_identities"
            " WHERE user_id = %s ORDER BY link_time, channel, external_id",
            (user_id,),
        )
        identities = await cur.fetchall()
    user = message_pb2.User(
        user_id=str(row["user_id"]),
        display_name=row["display_name"],
        preferred_channel=row["preferred_channel"],
        merged_into_user_id=str(row["merged_into_user_id"] or ""),
        identities=[
            message_pb2.ExternalIdentity(
                channel=i["channel"], external_id=i["external_id"], display_name=i["display_name"]
            )
            for i in identities
        ],
    )
    user.create_time.FromDatetime(row["create_time"])
    for message, i in zip(user.identities, identities):
        message.link_time.FromDatetime(i["link_time"])
    return row["owner_client_id"], user
