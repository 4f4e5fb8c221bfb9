"""The conversations' tables: conversations, current members, membership history
and the request log.

Every change runs in one transaction that first claims its request_id in
`conversation_requests`, so a retry (or a concurrent duplicate, which waits on
the claimed row) answers with the conversation instead of changing anything
twice. Membership changes then lock the conversation row, which numbers the
history without gaps and makes "last owner" checks race-free. Whoever is about
to become a member is first held against a concurrent merge (member_locks.py).

Every conversation belongs to a client (`owner_client_id`, services/runtime/tenancy.py):
`caller` is the calling client (None: an internal call), and a conversation of another
client is NOT_FOUND exactly like one that does not exist. Direct pairs and platform bindings
are unique per client.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as pb
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.conversations.member_locks import hold_members
from services.runtime.errors import AlreadyExists, FailedPrecondition, NotFound, Unavailable
from services.runtime.tenancy import UNOWNED, may_touch

_CONVERSATION_COLUMNS = (
    "conversation_id, type, title, binding_channel, binding_account_id, binding_external_group_id,"
    " create_time, update_time"
)


@dataclass(frozen=True)
class MemberSpec:
    user_id: uuid.UUID
    role: int
    preferred_channel: int


@dataclass(frozen=True)
class Binding:
    channel: int
    account_id: str
    external_group_id: str

    @property
    def label(self) -> str:
        return f"{channel_pb2.Channel.Name(self.channel)}/{self.account_id}/{self.external_group_id}"


# Where a newest-first page ended: (create_time, conversation_id) of its last conversation.
ConversationKey = tuple[datetime.datetime, uuid.UUID]


class ConversationStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    # Changes ---------------------------------------------------------------------------

    async def create_conversation(
        self,
        request_id: uuid.UUID,
        digest: bytes,
        kind: int,
        title: str,
        members: Sequence[MemberSpec],
        binding: Binding | None,
        owner: str = UNOWNED,
    ) -> pb.Conversation:
        conversation_id = uuid.uuid4()
        pair = sorted(m.user_id for m in members) if kind == pb.CONVERSATION_TYPE_DIRECT else [None, None]
        async with self.pool.connection() as conn, conn.transaction():
            earlier = await _claim(conn, request_id, "CreateConversation", digest, conversation_id)
            if earlier is not None:
                return await _read_conversation(conn, earlier)
            await hold_members(conn, [m.user_id for m in members])  # a user merged away meanwhile is refused
            # No conflict target: either unique index (direct pair, platform binding) stops it,
            # and a concurrent creator of the same pair or binding is waited for first.
            cursor = await conn.execute(
                "INSERT INTO conversations (conversation_id, owner_client_id, type, title, binding_channel,"
                " binding_account_id, binding_external_group_id, direct_user_low, direct_user_high, create_time,"
                " update_time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now(), now())"
                " ON CONFLICT DO NOTHING",
                (
                    conversation_id,
                    owner,
                    kind,
                    title,
                    binding and binding.channel,
                    binding and binding.account_id,
                    binding and binding.external_group_id,
                    pair[0],
                    pair[1],
                ),
            )
            if cursor.rowcount == 0:
                await _raise_taken(conn, owner, pair, binding)
            for member in members:
                await _add_member(conn, conversation_id, member, request_id)
            return await _read_conversation(conn, conversation_id)

    async def add_member(
        self, request_id: uuid.UUID, digest: bytes, conversation_id: uuid.UUID, member: MemberSpec, caller: str | None = None
    ) -> pb.Conversation:
        async with self.pool.connection() as conn, conn.transaction():
            earlier = await _claim(conn, request_id, "AddMember", digest, conversation_id)
            if earlier is not None:
                return await _read_conversation(conn, earlier)
            await hold_members(conn, [member.user_id])  # before the conversation row: see member_locks
            await _lock_group(conn, conversation_id, caller)
            if not await _add_member(conn, conversation_id, member, request_id):
                raise AlreadyExists(f"user {member.user_id} is already a member of conversation {conversation_id}")
            return await _read_conversation(conn, conversation_id)

    async def remove_member(
        self,
        request_id: uuid.UUID,
        digest: bytes,
        conversation_id: uuid.UUID,
        user_id: uuid.UUID,
        reason: str,
        caller: str | None = None,
    ) -> pb.Conversation:
        async with self.pool.connection() as conn, conn.transaction():
            earlier = await _claim(conn, request_id, "RemoveMember", digest, conversation_id)
            if earlier is not None:
                return await _read_conversation(conn, earlier)
            await _lock_group(conn, conversation_id, caller)
            row = await (
                await conn.execute(
                    "DELETE FROM conversation_members WHERE conversation_id = %s AND user_id = %s RETURNING role",
                    (conversation_id, user_id),
                )
            ).fetchone()
            if row is None:
                raise NotFound(f"user {user_id} is not a member of conversation {conversation_id}")
            role = row[0]
            if role == pb.MEMBER_ROLE_OWNER:
                owners = await (
                    await conn.execute(
                        "SELECT count(*) FROM conversation_members WHERE conversation_id = %s AND role = %s",
                        (conversation_id, pb.MEMBER_ROLE_OWNER),
                    )
                ).fetchone()
                if owners == (0,):  # raising rolls the removal back
                    raise FailedPrecondition(
                        f"user {user_id} is the last owner of conversation {conversation_id}; make another member"
                        " owner first"
                    )
            await record_change(conn, conversation_id, user_id, pb.MEMBERSHIP_ACTION_REMOVED, role, reason, request_id)
            return await _read_conversation(conn, conversation_id)

    # Reads -------------------------------------------------------------------------------

    async def get_owned_conversation(self, conversation_id: uuid.UUID) -> tuple[str, pb.Conversation]:
        """The conversation's owner and the conversation."""
        async with self.pool.connection() as conn:
            return await _read_owned_conversation(conn, conversation_id)

    async def list_conversations(
        self,
        limit: int,
        after: ConversationKey | None,
        member_user_id: uuid.UUID | None,
        binding: Binding | None,
        caller: str | None = None,
    ) -> tuple[list[pb.Conversation], ConversationKey | None]:
        """One page, newest first, and the key to continue after it (None on the last page):
        the caller's conversations only, every one for an internal caller."""
        joins, conditions, params = "", [], []
        if member_user_id is not None:
            joins = " JOIN conversation_members m ON m.conversation_id = c.conversation_id AND m.user_id = %s"
            params.append(member_user_id)
        if caller is not None:
            conditions.append("c.owner_client_id = %s")
            params.append(caller)
        if binding is not None:
            conditions.append("c.binding_channel = %s AND c.binding_account_id = %s AND c.binding_external_group_id = %s")
            params += [binding.channel, binding.account_id, binding.external_group_id]
        if after is not None:
            conditions.append("(c.create_time, c.conversation_id) < (%s, %s)")
            params += list(after)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        query = (
            f"SELECT c.conversation_id, c.type, c.title, c.binding_channel, c.binding_account_id,"
            f" c.binding_external_group_id, c.create_time, c.update_time FROM conversations c{joins}{where}"
            " ORDER BY c.create_time DESC, c.conversation_id DESC LIMIT %s"
        )
        params.append(limit + 1)  # one more tells whether another page follows
        async with self.pool.connection() as conn:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(query, params)
                rows = await cur.fetchall()
            page = rows[:limit]
            members = await _read_members(conn, [r["conversation_id"] for r in page])
        conversations = [_conversation(r, members.get(r["conversation_id"], [])) for r in page]
        last = page[-1] if len(rows) > limit else None
        return conversations, (last["create_time"], last["conversation_id"]) if last else None

    async def list_membership_changes(
        self, conversation_id: uuid.UUID, limit: int, after_seq: int, caller: str | None = None
    ) -> tuple[list[pb.MembershipChange], int | None]:
        """One page, oldest first, and the seq to continue after (None on the last page)."""
        async with self.pool.connection() as conn:
            found = await (
                await conn.execute("SELECT owner_client_id FROM conversations WHERE conversation_id = %s", (conversation_id,))
            ).fetchone()
            if found is None or not may_touch(caller, found[0]):
                raise NotFound(f"conversation_id: no conversation {conversation_id}")
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    "SELECT seq, user_id, action, role, reason, request_id, change_time"
                    " FROM conversation_membership_changes WHERE conversation_id = %s AND seq > %s"
                    " ORDER BY seq LIMIT %s",
                    (conversation_id, after_seq, limit + 1),
                )
                rows = await cur.fetchall()
        page = rows[:limit]
        changes = []
        for r in page:
            change = pb.MembershipChange(
                user_id=str(r["user_id"]),
                action=r["action"],
                role=r["role"],
                reason=r["reason"],
                request_id=str(r["request_id"]),
            )
            change.change_time.FromDatetime(r["change_time"])
            changes.append(change)
        return changes, page[-1]["seq"] if len(rows) > limit else None


async def _claim(
    conn: AsyncConnection, request_id: uuid.UUID, method: str, digest: bytes, conversation_id: uuid.UUID
) -> uuid.UUID | None:
    """Claim request_id for this request; returns the conversation of an earlier identical request."""
    cursor = await conn.execute(
        "INSERT INTO conversation_requests (request_id, method, request_hash, conversation_id)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (request_id) DO NOTHING",
        (request_id, method, digest, conversation_id),
    )
    if cursor.rowcount == 1:
        return None
    # A new statement sees the row committed by the request we waited on.
    row = await (
        await conn.execute(
            "SELECT method, request_hash, conversation_id FROM conversation_requests WHERE request_id = %s",
            (request_id,),
        )
    ).fetchone()
    assert row is not None
    earlier_method, earlier_digest, earlier_conversation = row
    if earlier_method != method or bytes(earlier_digest) != digest:
        raise AlreadyExists(f"request_id {request_id} was already used for a different request ({earlier_method})")
    return earlier_conversation


async def _raise_taken(conn: AsyncConnection, owner: str, pair: list, binding: Binding | None) -> None:
    """Name the conversation (of the same owner) that holds the direct pair or the platform binding."""
    if pair[0] is not None:
        row = await (
            await conn.execute(
                "SELECT conversation_id FROM conversations WHERE owner_client_id = %s AND direct_user_low = %s"
                " AND direct_user_high = %s",
                (owner, pair[0], pair[1]),
            )
        ).fetchone()
        if row:
            raise AlreadyExists(f"direct conversation {row[0]} between users {pair[0]} and {pair[1]} already exists")
    if binding is not None:
        row = await (
            await conn.execute(
                "SELECT conversation_id FROM conversations WHERE owner_client_id = %s AND binding_channel = %s"
                " AND binding_account_id = %s AND binding_external_group_id = %s",
                (owner, binding.channel, binding.account_id, binding.external_group_id),
            )
        ).fetchone()
        if row:
            raise AlreadyExists(f"platform_binding: {binding.label} is already bound to conversation {row[0]}")
    # The holder went away between the insert and the reads; safe to retry with the same request_id.
    raise Unavailable("the conversation conflicted with a concurrent change; retry")


async def _lock_group(conn: AsyncConnection, conversation_id: uuid.UUID, caller: str | None) -> None:
    row = await (
        await conn.execute(
            "SELECT type, owner_client_id FROM conversations WHERE conversation_id = %s FOR UPDATE", (conversation_id,)
        )
    ).fetchone()
    if row is None or not may_touch(caller, row[1]):
        raise NotFound(f"conversation_id: no conversation {conversation_id}")
    if row[0] == pb.CONVERSATION_TYPE_DIRECT:
        raise FailedPrecondition(f"conversation {conversation_id} is direct; its membership is fixed")


async def _add_member(conn: AsyncConnection, conversation_id: uuid.UUID, member: MemberSpec, request_id: uuid.UUID) -> bool:
    """Add and record a member; False if they already are one, and the caller must then roll back
    (the change was numbered first). The caller holds the conversation row."""
    seq = await record_change(
        conn, conversation_id, member.user_id, pb.MEMBERSHIP_ACTION_ADDED, member.role, "", request_id
    )
    cursor = await conn.execute(
        "INSERT INTO conversation_members (conversation_id, user_id, role, preferred_channel, join_time, join_seq)"
        " VALUES (%s, %s, %s, %s, now(), %s) ON CONFLICT (conversation_id, user_id) DO NOTHING",
        (conversation_id, member.user_id, member.role, member.preferred_channel, seq),
    )
    return cursor.rowcount == 1


async def record_change(
    conn: AsyncConnection,
    conversation_id: uuid.UUID,
    user_id: uuid.UUID,
    action: int,
    role: int,
    reason: str,
    request_id: uuid.UUID,
) -> int:
    """Number and append one membership change; the caller holds the conversation row."""
    row = await (
        await conn.execute(
            "UPDATE conversations SET membership_seq = membership_seq + 1, update_time = now()"
            " WHERE conversation_id = %s RETURNING membership_seq",
            (conversation_id,),
        )
    ).fetchone()
    assert row is not None
    await conn.execute(
        "INSERT INTO conversation_membership_changes"
        " (conversation_id, seq, user_id, action, role, reason, request_id, change_time)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, now())",
        (conversation_id, row[0], user_id, action, role, reason, request_id),
    )
    return row[0]


async def _read_conversation(conn: AsyncConnection, conversation_id: uuid.UUID) -> pb.Conversation:
    return (await _read_owned_conversation(conn, conversation_id))[1]


async def _read_owned_conversation(conn: AsyncConnection, conversation_id: uuid.UUID) -> tuple[str, pb.Conversation]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_CONVERSATION_COLUMNS}, owner_client_id FROM conversations WHERE conversation_id = %s",
            (conversation_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"conversation_id: no conversation {conversation_id}")
    members = await _read_members(conn, [conversation_id])
    return row["owner_client_id"], _conversation(row, members.get(conversation_id, []))


async def _read_members(conn: AsyncConnection, conversation_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[pb.Member]]:
    if not conversation_ids:
        return {}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT conversation_id, user_id, role, preferred_channel, join_time FROM conversation_members"
            " WHERE conversation_id = ANY(%s) ORDER BY conversation_id, join_seq",
            (conversation_ids,),
        )
        rows = await cur.fetchall()
    members: dict[uuid.UUID, list[pb.Member]] = {}
    for r in rows:
        member = pb.Member(user_id=str(r["user_id"]), role=r["role"], preferred_channel=r["preferred_channel"])
        member.join_time.FromDatetime(r["join_time"])
        members.setdefault(r["conversation_id"], []).append(member)
    return members


def _conversation(row: dict, members: list[pb.Member]) -> pb.Conversation:
    conversation = pb.Conversation(
        conversation_id=str(row["conversation_id"]), type=row["type"], title=row["title"], members=members
    )
    if row["binding_channel"] is not None:
        conversation.platform_binding.CopyFrom(
            pb.PlatformBinding(
                channel=row["binding_channel"],
                account_id=row["binding_account_id"],
                external_group_id=row["binding_external_group_id"],
            )
        )
    conversation.create_time.FromDatetime(row["create_time"])
    conversation.update_time.FromDatetime(row["update_time"])
    return conversation
