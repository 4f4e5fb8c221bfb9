"""Merging one user into another, in the users' own tables: the source's identities
move to the target, the source keeps only merged_into_user_id, and the merge is
recorded in `user_merges`, all in one transaction.

Both user rows are locked in id order, so merges racing over the same users
(A into B against B into A, or A into B against A into C) wait for each other
instead of deadlocking, and the second one finds a user already merged and
fails: exactly one wins and no cycle can form.

Both users must belong to the caller (services/runtime/tenancy.py), and to one client even
for an internal caller: identities are per client, so one client's cannot move to another's user.

The memberships move in ConversationService afterwards (see memberships.py);
`memberships_moved_time` says whether that step has been confirmed.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from services.runtime.errors import FailedPrecondition, NotFound
from services.runtime.tenancy import may_touch
from services.users.store import claim_request


@dataclass(frozen=True)
class Merge:
    source_user_id: uuid.UUID
    target_user_id: uuid.UUID
    request_id: uuid.UUID
    memberships_moved: bool


class MergeStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def merge(
        self, request_id: uuid.UUID, digest: bytes, source: uuid.UUID, target: uuid.UUID, caller: str | None
    ) -> Merge:
        """Merge source into target, or return the merge an earlier identical request made."""
        async with self.pool.connection() as conn, conn.transaction():
            earlier = await claim_request(conn, request_id, "MergeUsers", digest, target)
            if earlier is not None:
                return await _merge_of(conn, request_id)
            await _lock_unmerged(conn, source, target, caller)
            moved = await (
                await conn.execute(
                    # link_time: the identities are linked to the target from now on, after its own.
                    "UPDATE user_identities SET user_id = %s, link_time = now() WHERE user_id = %s"
                    " RETURNING channel, external_id",
                    (target, source),
                )
            ).fetchall()
            await conn.execute("UPDATE users SET merged_into_user_id = %s WHERE user_id = %s", (target, source))
            identities = [{"channel": channel, "external_id": external_id} for channel, external_id in sorted(moved)]
            await conn.execute(
                "INSERT INTO user_merges (source_user_id, target_user_id, request_id, moved_identities)"
                " VALUES (%s, %s, %s, %s)",
                (source, target, request_id, Jsonb(identities)),
            )
            return Merge(source, target, request_id, memberships_moved=False)

    async def memberships_moved(self, source: uuid.UUID) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE user_merges SET memberships_moved_time = now()"
                " WHERE source_user_id = %s AND memberships_moved_time IS NULL",
                (source,),
            )

    async def unfinished(self, older_than: datetime.timedelta, limit: int = 100) -> list[Merge]:
        """Merges whose memberships have not been confirmed moved, oldest first."""
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT source_user_id, target_user_id, request_id FROM user_merges"
                    " WHERE memberships_moved_time IS NULL AND merge_time < now() - %s"
                    " ORDER BY merge_time LIMIT %s",
                    (older_than, limit),
                )
            ).fetchall()
        return [Merge(source, target, request_id, memberships_moved=False) for source, target, request_id in rows]


async def _lock_unmerged(conn: AsyncConnection, source: uuid.UUID, target: uuid.UUID, caller: str | None) -> None:
    """Lock both users, lower id first; NOT_FOUND or FAILED_PRECONDITION naming the field."""
    rows = await (
        await conn.execute(
            "SELECT user_id, merged_into_user_id, owner_client_id FROM users WHERE user_id = ANY(%s)"
            " ORDER BY user_id FOR UPDATE",
            ([source, target],),
        )
    ).fetchall()
    merged_into = {user_id: merged for user_id, merged, _ in rows}
    owners = {user_id: owner for user_id, _, owner in rows}
    for field, user_id in (("source_user_id", source), ("target_user_id", target)):
        if user_id not in merged_into or not may_touch(caller, owners[user_id]):
            raise NotFound(f"{field}: no user {user_id}")
    if owners[source] != owners[target]:  # only an internal caller sees both
        raise FailedPrecondition("target_user_id: the two users belong to different clients")
    for field, user_id in (("source_user_id", source), ("target_user_id", target)):
        if merged_into[user_id] is not None:
            raise FailedPrecondition(f"{field}: user {user_id} was already merged into {merged_into[user_id]}")


async def _merge_of(conn: AsyncConnection, request_id: uuid.UUID) -> Merge:
    row = await (
        await conn.execute(
            "SELECT source_user_id, target_user_id, memberships_moved_time IS NOT NULL FROM user_merges"
            " WHERE request_id = %s",
            (request_id,),
        )
    ).fetchone()
    assert row is not None, "a MergeUsers request is claimed in the transaction that records its merge"
    return Merge(row[0], row[1], request_id, memberships_moved=row[2])
