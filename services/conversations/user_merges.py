"""Applying a UserService merge to memberships (ApplyUserMerge): every membership of
the merged-away user becomes the survivor's, recorded in each conversation's history.

It is one transaction: all of the source's memberships move, and the source is
listed in `merged_users`, or nothing changes. The row is also the answer to a
repeated call, which is how a merge interrupted between UserService and here is
finished: MergeUsers (or its follow-up) simply calls again.

What each conversation becomes:
- the survivor is not a member: the source's membership becomes theirs, with its
  role and preferred channel (history: source REMOVED, survivor ADDED);
- the survivor is a member already: the source's membership ends and the survivor
  keeps the stronger role of the two, so a group whose owner was the source keeps
  an owner (history: source REMOVED, and survivor ADDED with the role it gained);
- a direct conversation between the two keeps the survivor alone: its history stays
  readable, and no direct conversation of a person with themselves is invented;
- a direct conversation of the source with someone else becomes the survivor's
  direct conversation with them, found again by CreateConversation, unless the
  survivor already has one with that person: then both stay, that one keeps the pair.
"""

from __future__ import annotations

import uuid

from chat4all.conversations.v1 import message_pb2 as pb
from psycopg import AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool

from services.conversations.member_locks import hold_merging_user, hold_survivor
from services.conversations.store import record_change
from services.runtime.errors import FailedPrecondition


class UserMerges:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def apply(self, request_id: uuid.UUID, source: uuid.UUID, target: uuid.UUID) -> list[uuid.UUID]:
        """Move the source's memberships to the survivor; the conversations changed by the merge."""
        async with self.pool.connection() as conn, conn.transaction():
            # Locks first, conversation rows after (see member_locks): the source exclusively, so
            # no one adds it meanwhile, and the survivor shared, so its own merge waits for us.
            await hold_merging_user(conn, source)
            applied = await (
                await conn.execute(
                    "SELECT merged_into_user_id, changed_conversation_ids FROM merged_users WHERE user_id = %s", (source,)
                )
            ).fetchone()
            if applied is not None:
                if applied[0] != target:  # UserService merges a user once; this is a confused caller
                    raise FailedPrecondition(f"user {source} was merged into {applied[0]}, not {target}")
                return list(applied[1])
            survivor = await hold_survivor(conn, target)
            changed = [
                conversation_id
                for conversation_id in await _lock_conversations_of(conn, source)
                if await _hand_over(conn, conversation_id, source, survivor, request_id)
            ]
            await conn.execute(
                "INSERT INTO merged_users (user_id, merged_into_user_id, request_id, changed_conversation_ids)"
                " VALUES (%s, %s, %s, %s)",
                (source, target, request_id, changed),
            )
            return changed


async def _lock_conversations_of(conn: AsyncConnection, user_id: uuid.UUID) -> list[uuid.UUID]:
    """Lock, in id order (no deadlock between two merges), the conversations the user is in."""
    rows = await (
        await conn.execute(
            "SELECT conversation_id FROM conversations WHERE conversation_id IN"
            " (SELECT conversation_id FROM conversation_members WHERE user_id = %s)"
            " ORDER BY conversation_id FOR UPDATE",
            (user_id,),
        )
    ).fetchall()
    return [r[0] for r in rows]


async def _hand_over(
    conn: AsyncConnection, conversation_id: uuid.UUID, source: uuid.UUID, survivor: uuid.UUID, request_id: uuid.UUID
) -> bool:
    """The source's membership of one (locked) conversation becomes the survivor's; False if the
    source left it while we waited for the lock."""
    leaving = await (
        await conn.execute(
            "DELETE FROM conversation_members WHERE conversation_id = %s AND user_id = %s RETURNING role, preferred_channel",
            (conversation_id, source),
        )
    ).fetchone()
    if leaving is None:
        return False
    role, preferred_channel = leaving
    staying = await (
        await conn.execute(
            "SELECT role FROM conversation_members WHERE conversation_id = %s AND user_id = %s",
            (conversation_id, survivor),
        )
    ).fetchone()
    await record_change(
        conn, conversation_id, source, pb.MEMBERSHIP_ACTION_REMOVED, role, f"merged into user {survivor}", request_id
    )
    joined_because = f"merged from user {source}"
    if staying is None:
        seq = await record_change(conn, conversation_id, survivor, pb.MEMBERSHIP_ACTION_ADDED, role, joined_because, request_id)
        await conn.execute(
            "INSERT INTO conversation_members (conversation_id, user_id, role, preferred_channel, join_time, join_seq)"
            " VALUES (%s, %s, %s, %s, now(), %s)",
            (conversation_id, survivor, role, preferred_channel, seq),
        )
        await _rekey_direct_pair(conn, conversation_id, source, survivor)
    elif role < staying[0]:  # MemberRole numbers: OWNER 1, ADMIN 2, MEMBER 3; lower is stronger
        await conn.execute(
            "UPDATE conversation_members SET role = %s WHERE conversation_id = %s AND user_id = %s",
            (role, conversation_id, survivor),
        )
        await record_change(conn, conversation_id, survivor, pb.MEMBERSHIP_ACTION_ADDED, role, joined_because, request_id)
    return True


async def _rekey_direct_pair(conn: AsyncConnection, conversation_id: uuid.UUID, source: uuid.UUID, survivor: uuid.UUID) -> None:
    """A direct conversation of the source now pairs the survivor with the other member, so
    CreateConversation of that pair finds it; unless the survivor has such a conversation already."""
    row = await (
        await conn.execute(
            "SELECT direct_user_low, direct_user_high FROM conversations WHERE conversation_id = %s AND type = %s",
            (conversation_id, pb.CONVERSATION_TYPE_DIRECT),
        )
    ).fetchone()
    if row is None:
        return
    other = row[1] if row[0] == source else row[0]
    try:
        async with conn.transaction():  # a savepoint: losing the pair must not undo the merge
            await conn.execute(
                "UPDATE conversations SET direct_user_low = %s, direct_user_high = %s WHERE conversation_id = %s",
                (*sorted([other, survivor]), conversation_id),
            )
    except errors.UniqueViolation:
        pass  # the survivor's own direct conversation with them keeps the pair
