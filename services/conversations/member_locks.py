"""Who may still become a member, decided race-free against merges.

A merge moves every membership of the merged-away user in one transaction, but
AddMember or CreateConversation may have checked that user a moment before the
merge and insert it a moment after, leaving a membership of a user that no
longer exists. So both sides meet on a PostgreSQL advisory lock per user: a
transaction that makes a user a member holds it shared and refuses users listed
in `merged_users`; applying a merge holds it exclusively while it lists the user
there and moves the memberships. Whichever comes second sees the other's work.

Order: these locks are taken before any conversation row is locked, everywhere,
so a merge waiting for a conversation can never hold up a transaction that holds
that conversation and waits for the user.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from psycopg import AsyncConnection

from services.runtime.errors import FailedPrecondition


def _key(user_id: uuid.UUID) -> int:
    """The advisory lock key of a user: the first 64 bits of the id, as a signed bigint."""
    return int.from_bytes(user_id.bytes[:8], "big", signed=True)


async def _hold_shared(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (_key(user_id),))


async def hold_members(conn: AsyncConnection, user_ids: Iterable[uuid.UUID]) -> None:
    """Before making these users members: wait out a merge of any of them, then refuse merged ones."""
    ids = sorted(set(user_ids))
    # One statement however large the group; shared locks never wait for each other, only for a merge.
    await conn.execute(
        "SELECT pg_advisory_xact_lock_shared(k) FROM unnest(%s::bigint[]) AS k", ([_key(u) for u in ids],)
    )
    row = await (
        await conn.execute(
            "SELECT user_id, merged_into_user_id FROM merged_users WHERE user_id = ANY(%s) ORDER BY user_id LIMIT 1",
            (ids,),
        )
    ).fetchone()
    if row is not None:
        raise FailedPrecondition(f"user {row[0]} was merged into {row[1]}; use that user")


async def hold_merging_user(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    """While applying a merge of this user: no one else makes them a member or applies their merge."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_key(user_id),))


async def hold_survivor(conn: AsyncConnection, user_id: uuid.UUID, max_hops: int = 16) -> uuid.UUID:
    """The user memberships of someone merged into `user_id` go to: `user_id` itself, or, if its
    own merge was applied here since, whoever it was merged into (followed to the end). Held
    shared, so that user's own merge waits until the memberships have arrived and then moves them on."""
    for _ in range(max_hops):
        await _hold_shared(conn, user_id)
        row = await (
            await conn.execute("SELECT merged_into_user_id FROM merged_users WHERE user_id = %s", (user_id,))
        ).fetchone()
        if row is None:
            return user_id
        user_id = row[0]
    raise FailedPrecondition(f"user {user_id} is merged through more than {max_hops} users")
