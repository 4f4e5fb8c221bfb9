"""MergeUsers against real servers and PostgreSQL: identities, conversation memberships
and their history follow the surviving user, the merge is recorded, retries are
idempotent, racing merges cannot both win, an interrupted merge is finished, and
other processes' caches learn about it."""

from __future__ import annotations

import asyncio
import datetime
import uuid

import grpc
import pytest
import redis.asyncio as redis
from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as pb, request_response_pb2 as crr, service_pb2_grpc as conversations_grpc
from chat4all.users.v1 import message_pb2 as users_pb, request_response_pb2 as rr, service_pb2_grpc as users_grpc

from services.conversations.store import ConversationStore, MemberSpec
from services.messaging.directory import Directory
from services.runtime import change_feed, postgres
from services.runtime.errors import FailedPrecondition
from tests.services.servers import query, users_and_conversations, users_service

WHATSAPP, TELEGRAM, INSTAGRAM = channel_pb2.CHANNEL_WHATSAPP, channel_pb2.CHANNEL_TELEGRAM, channel_pb2.CHANNEL_INSTAGRAM
DIRECT, GROUP = pb.CONVERSATION_TYPE_DIRECT, pb.CONVERSATION_TYPE_GROUP
OWNER, ADMIN, MEMBER = pb.MEMBER_ROLE_OWNER, pb.MEMBER_ROLE_ADMIN, pb.MEMBER_ROLE_MEMBER
ADDED, REMOVED = pb.MEMBERSHIP_ACTION_ADDED, pb.MEMBERSHIP_ACTION_REMOVED
REDIS_URL = "redis://127.0.0.1:6379/0"


def rid() -> str:
    return str(uuid.uuid4())


def identity(channel: int, external_id: str) -> users_pb.ExternalIdentity:
    return users_pb.ExternalIdentity(channel=channel, external_id=external_id)


def keys(user: users_pb.User) -> list[tuple[int, str]]:
    return [(i.channel, i.external_id) for i in user.identities]


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


class Platform:
    """The two services as a client sees them."""

    def __init__(self, users_channel: grpc.aio.Channel, conversations_channel: grpc.aio.Channel) -> None:
        self.users = users_grpc.UserServiceStub(users_channel)
        self.conversations = conversations_grpc.ConversationServiceStub(conversations_channel)

    async def user(self, name: str = "someone", *identities: users_pb.ExternalIdentity) -> str:
        request = rr.CreateUserRequest(request_id=rid(), display_name=name, identities=identities)
        return (await self.users.CreateUser(request)).user.user_id

    async def get_user(self, user_id: str) -> users_pb.User:
        return (await self.users.GetUser(rr.GetUserRequest(user_id=user_id))).user

    async def merge(self, source: str, target: str, request_id: str | None = None, users=None) -> users_pb.User:
        request = rr.MergeUsersRequest(request_id=request_id or rid(), source_user_id=source, target_user_id=target)
        return (await (users or self.users).MergeUsers(request, timeout=30)).user

    async def resolve(self, channel: int, external_id: str) -> users_pb.User:
        return (await self.users.ResolveIdentity(rr.ResolveIdentityRequest(channel=channel, external_id=external_id))).user

    async def create(self, kind: int, *members) -> pb.Conversation:
        request = crr.CreateConversationRequest(
            request_id=rid(), type=kind, members=[m if isinstance(m, pb.Member) else pb.Member(user_id=m) for m in members]
        )
        return (await self.conversations.CreateConversation(request, timeout=10)).conversation

    async def get(self, conversation_id: str) -> pb.Conversation:
        request = crr.GetConversationRequest(conversation_id=conversation_id)
        return (await self.conversations.GetConversation(request)).conversation

    async def conversations_of(self, user_id: str) -> set[str]:
        response = await self.conversations.ListConversations(crr.ListConversationsRequest(member_user_id=user_id))
        return {c.conversation_id for c in response.conversations}

    async def history(self, conversation_id: str) -> list[pb.MembershipChange]:
        request = crr.ListMembershipChangesRequest(conversation_id=conversation_id)
        return list((await self.conversations.ListMembershipChanges(request)).membership_changes)

    async def apply(self, source: str, target: str, request_id: str | None = None) -> list[str]:
        request = crr.ApplyUserMergeRequest(request_id=request_id or rid(), source_user_id=source, target_user_id=target)
        return list((await self.conversations.ApplyUserMerge(request)).conversation_ids)


@pytest.fixture
async def platform(postgres_dsn):
    async with users_and_conversations(postgres_dsn) as (users_channel, conversations_channel):
        yield Platform(users_channel, conversations_channel)


def members(conversation: pb.Conversation) -> list[tuple[str, int]]:
    return [(m.user_id, m.role) for m in conversation.members]


def entries(history: list[pb.MembershipChange]) -> list[tuple[str, int, int, str]]:
    return [(c.user_id, c.action, c.role, c.reason) for c in history]


# Identities and resolution -------------------------------------------------------------------


async def test_merge_moves_identities_and_resolution_follows_the_survivor(platform):
    old = await platform.user("Ana (WhatsApp)", identity(WHATSAPP, "5511"), identity(TELEGRAM, "42"))
    ana = await platform.user("Ana", identity(INSTAGRAM, "ig-1"))

    survivor = await platform.merge(old, ana)
    assert survivor.user_id == ana and survivor.display_name == "Ana" and not survivor.merged_into_user_id
    # The survivor's own identities first, then the ones it received.
    assert keys(survivor) == [(INSTAGRAM, "ig-1"), (WHATSAPP, "5511"), (TELEGRAM, "42")]
    assert survivor == await platform.get_user(ana)

    merged = await platform.get_user(old)
    assert merged.merged_into_user_id == ana and merged.display_name == "Ana (WhatsApp)" and not merged.identities
    for channel, external_id in [(WHATSAPP, "5511"), (TELEGRAM, "42"), (INSTAGRAM, "ig-1")]:
        assert (await platform.resolve(channel, external_id)).user_id == ana
    link = rr.LinkIdentityRequest(request_id=rid(), user_id=old, identity=identity(WHATSAPP, "77"))
    error = await rpc_error(platform.users.LinkIdentity(link))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and ana in error.details()


async def test_cached_lookups_follow_a_merge_and_an_unlink(platform):
    old = await platform.user("Ana (WhatsApp)", identity(WHATSAPP, "5511"), identity(TELEGRAM, "42"))
    ana = await platform.user("Ana")
    # Read once: these answers are now the shared cache's copies.
    assert (await platform.resolve(WHATSAPP, "5511")).user_id == old
    assert not (await platform.get_user(old)).merged_into_user_id
    await platform.merge(old, ana)
    assert (await platform.resolve(WHATSAPP, "5511")).user_id == ana
    assert (await platform.get_user(old)).merged_into_user_id == ana
    assert keys(await platform.get_user(ana)) == [(WHATSAPP, "5511"), (TELEGRAM, "42")]
    await platform.users.UnlinkIdentity(rr.UnlinkIdentityRequest(request_id=rid(), user_id=ana, channel=TELEGRAM, external_id="42"))
    assert (await rpc_error(platform.resolve(TELEGRAM, "42"))).code() == grpc.StatusCode.NOT_FOUND
    assert keys(await platform.get_user(ana)) == [(WHATSAPP, "5511")]


async def test_the_merge_is_recorded(platform, postgres_dsn):
    old = await platform.user("old", identity(TELEGRAM, "42"), identity(WHATSAPP, "5511"))
    ana = await platform.user("Ana")
    request_id = rid()
    before = datetime.datetime.now(datetime.timezone.utc)
    await platform.merge(old, ana, request_id)
    [(source, target, recorded_request, moved, merge_time, moved_time)] = await query(
        postgres_dsn,
        "SELECT source_user_id::text, target_user_id::text, request_id::text, moved_identities, merge_time,"
        " memberships_moved_time FROM user_merges",
    )
    assert (source, target, recorded_request) == (old, ana, request_id)
    assert moved == [{"channel": WHATSAPP, "external_id": "5511"}, {"channel": TELEGRAM, "external_id": "42"}]
    assert before - datetime.timedelta(seconds=5) < merge_time <= moved_time
    # UserService records nothing about conversations; ConversationService keeps its own record.
    assert await query(postgres_dsn, "SELECT user_id::text, merged_into_user_id::text, request_id::text FROM merged_users") == [
        (old, ana, request_id)
    ]


async def test_a_retry_returns_the_same_answer_and_changes_nothing(platform, postgres_dsn):
    old = await platform.user("old", identity(TELEGRAM, "42"))
    ana = await platform.user("Ana")
    group = await platform.create(GROUP, pb.Member(user_id=old, role=OWNER))
    request_id = rid()
    first = await platform.merge(old, ana, request_id)
    retries = await asyncio.gather(*(platform.merge(old, ana, request_id) for _ in range(5)))
    assert all(retry == first for retry in retries)
    assert await query(postgres_dsn, "SELECT count(*) FROM user_merges") == [(1,)]
    assert await query(postgres_dsn, "SELECT count(*) FROM user_requests WHERE method = 'MergeUsers'") == [(1,)]
    assert len(await platform.history(group.conversation_id)) == 3  # old added, old removed, Ana added


async def test_ten_concurrent_identical_merges_make_one_merge(platform, postgres_dsn):
    old, ana = await platform.user("old", identity(TELEGRAM, "42")), await platform.user("Ana")
    request_id = rid()
    answers = await asyncio.gather(*(platform.merge(old, ana, request_id) for _ in range(10)))
    assert len({a.SerializeToString(deterministic=True) for a in answers}) == 1 and keys(answers[0]) == [(TELEGRAM, "42")]
    assert await query(postgres_dsn, "SELECT count(*) FROM user_merges") == [(1,)]


# Errors ------------------------------------------------------------------------------------


async def test_merge_errors_change_nothing(platform, postgres_dsn):
    ana = await platform.user("Ana", identity(WHATSAPP, "1"))
    bia = await platform.user("Bia", identity(TELEGRAM, "2"))
    missing = rid()

    def merge(**fields):
        return platform.users.MergeUsers(rr.MergeUsersRequest(**{"request_id": rid(), **fields}))

    for fields, code, named in [
        (dict(source_user_id=ana, target_user_id=ana), grpc.StatusCode.INVALID_ARGUMENT, "same user"),
        (dict(source_user_id=ana, target_user_id=ana.upper()), grpc.StatusCode.INVALID_ARGUMENT, "same user"),
        (dict(source_user_id="x", target_user_id=bia), grpc.StatusCode.INVALID_ARGUMENT, "source_user_id"),
        (dict(source_user_id=ana), grpc.StatusCode.INVALID_ARGUMENT, "target_user_id"),
        (dict(request_id="", source_user_id=ana, target_user_id=bia), grpc.StatusCode.INVALID_ARGUMENT, "request_id"),
        (dict(request_id=str(uuid.uuid1()), source_user_id=ana, target_user_id=bia), grpc.StatusCode.INVALID_ARGUMENT, "request_id"),
        (dict(source_user_id=missing, target_user_id=bia), grpc.StatusCode.NOT_FOUND, "source_user_id"),
        (dict(source_user_id=ana, target_user_id=missing), grpc.StatusCode.NOT_FOUND, "target_user_id"),
    ]:
        error = await rpc_error(merge(**fields))
        assert error.code() == code, fields
        assert named in error.details(), (fields, error.details())
    assert await query(postgres_dsn, "SELECT count(*) FROM user_merges") == [(0,)]
    assert await query(postgres_dsn, "SELECT count(*) FROM user_requests WHERE method = 'MergeUsers'") == [(0,)]
    assert keys(await platform.get_user(ana)) == [(WHATSAPP, "1")]


async def test_a_merged_user_is_neither_source_nor_target_again(platform):
    ana, bia, caio = await platform.user("Ana"), await platform.user("Bia"), await platform.user("Caio")
    await platform.merge(ana, bia)
    error = await rpc_error(platform.merge(ana, caio))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "source_user_id" in error.details() and bia in error.details()
    error = await rpc_error(platform.merge(caio, ana))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "target_user_id" in error.details() and bia in error.details()
    error = await rpc_error(platform.merge(bia, ana))  # back again would be a cycle
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert not (await platform.get_user(caio)).merged_into_user_id


async def test_request_id_reuse_for_another_request_is_already_exists(platform):
    ana, bia, caio = await platform.user("Ana"), await platform.user("Bia"), await platform.user("Caio")
    request_id = rid()
    await platform.merge(ana, bia, request_id)
    error = await rpc_error(platform.merge(caio, bia, request_id))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and request_id in error.details()
    assert not (await platform.get_user(caio)).merged_into_user_id
    # A request_id of another method cannot be reused either.
    linked = rid()
    link = rr.LinkIdentityRequest(request_id=linked, user_id=caio, identity=identity(WHATSAPP, "9"))
    await platform.users.LinkIdentity(link)
    error = await rpc_error(platform.merge(caio, bia, linked))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and "LinkIdentity" in error.details()


# Races -------------------------------------------------------------------------------------


async def test_opposite_merges_racing_exactly_one_wins(platform, postgres_dsn):
    pairs = [(await platform.user("A"), await platform.user("B")) for _ in range(8)]
    results = await asyncio.gather(
        *(call for a, b in pairs for call in (platform.merge(a, b), platform.merge(b, a))), return_exceptions=True
    )
    for n, (a, b) in enumerate(pairs):
        outcome = results[2 * n : 2 * n + 2]
        wins = [r for r in outcome if isinstance(r, users_pb.User)]
        losses = [r for r in outcome if isinstance(r, grpc.aio.AioRpcError)]
        assert len(wins) == 1 and len(losses) == 1, outcome
        assert losses[0].code() == grpc.StatusCode.FAILED_PRECONDITION
        survivor = wins[0].user_id
        loser = b if survivor == a else a
        assert (await platform.get_user(loser)).merged_into_user_id == survivor
        assert not (await platform.get_user(survivor)).merged_into_user_id
    assert await query(postgres_dsn, "SELECT count(*) FROM user_merges") == [(8,)]


async def test_one_source_racing_into_two_targets_goes_into_one(platform, postgres_dsn):
    for _ in range(5):
        source = await platform.user("S", identity(TELEGRAM, rid()))
        b, c = await platform.user("B"), await platform.user("C")
        results = await asyncio.gather(platform.merge(source, b), platform.merge(source, c), return_exceptions=True)
        wins = [r for r in results if isinstance(r, users_pb.User)]
        assert len(wins) == 1, results
        assert next(r for r in results if isinstance(r, grpc.aio.AioRpcError)).code() == grpc.StatusCode.FAILED_PRECONDITION
        assert (await platform.get_user(source)).merged_into_user_id == wins[0].user_id
        assert len(wins[0].identities) == 1


async def test_racing_merges_leave_no_merged_member_and_no_cycle(platform, postgres_dsn):
    """Chains (A into B while B goes into C) and shared conversations, all at once: afterwards
    every membership belongs to a user who was not merged away, and each conversation has each
    person once."""
    users = [await platform.user(f"U{n}") for n in range(6)]
    shared = await platform.create(GROUP, *[pb.Member(user_id=u, role=OWNER if n == 0 else MEMBER) for n, u in enumerate(users)])
    pairs = [await platform.create(DIRECT, users[n], users[n + 1]) for n in range(5)]
    plan = [(0, 1), (1, 2), (2, 3), (4, 5), (5, 4), (3, 0)]
    await asyncio.gather(*(platform.merge(users[s], users[t]) for s, t in plan), return_exceptions=True)

    merged = {row[0] for row in await query(postgres_dsn, "SELECT user_id::text FROM users WHERE merged_into_user_id IS NOT NULL")}
    assert merged and len(merged) < len(users)
    for conversation in [shared, *pairs]:
        current = [user for user, _ in members(await platform.get(conversation.conversation_id))]
        assert not set(current) & merged
        assert len(current) == len(set(current))
    # Following merged_into from any user ends at an unmerged one: no cycle.
    for user in users:
        for _ in range(len(users)):
            parent = (await platform.get_user(user)).merged_into_user_id
            if not parent:
                break
            user = parent
        else:
            pytest.fail("merged_into_user_id forms a cycle")
    # The shared group kept an owner whichever merges won.
    assert OWNER in [role for _, role in members(await platform.get(shared.conversation_id))]


# Conversations follow ------------------------------------------------------------------------


async def test_memberships_follow_the_survivor_with_history(platform):
    old, ana, caio = await platform.user("old"), await platform.user("Ana"), await platform.user("Caio")
    group = await platform.create(GROUP, pb.Member(user_id=old, role=OWNER), caio)
    direct = await platform.create(DIRECT, old, caio)
    untouched = await platform.create(GROUP, caio)
    request_id = rid()

    await platform.merge(old, ana, request_id)

    assert await platform.conversations_of(ana) == {group.conversation_id, direct.conversation_id}
    assert await platform.conversations_of(old) == set()
    assert members(await platform.get(group.conversation_id)) == [(caio, MEMBER), (ana, OWNER)]
    assert {u for u, _ in members(await platform.get(direct.conversation_id))} == {ana, caio}
    history = await platform.history(group.conversation_id)
    assert entries(history) == [
        (old, ADDED, OWNER, ""),
        (caio, ADDED, MEMBER, ""),
        (old, REMOVED, OWNER, f"merged into user {ana}"),
        (ana, ADDED, OWNER, f"merged from user {old}"),
    ]
    assert {c.request_id for c in history[2:]} == {request_id}
    assert len(await platform.history(untouched.conversation_id)) == 1
    # The moved direct conversation is the one of Ana and Caio now: no second one can be made.
    error = await rpc_error(platform.create(DIRECT, ana, caio))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and direct.conversation_id in error.details()


async def test_a_conversation_of_both_keeps_one_membership_with_the_stronger_role(platform):
    old, ana, caio = await platform.user("old"), await platform.user("Ana"), await platform.user("Caio")
    owned_by_old = await platform.create(GROUP, pb.Member(user_id=old, role=OWNER), ana, caio)
    admin_ana = await platform.create(GROUP, pb.Member(user_id=caio, role=OWNER), pb.Member(user_id=ana, role=ADMIN), old)

    await platform.merge(old, ana)

    assert members(await platform.get(owned_by_old.conversation_id)) == [(ana, OWNER), (caio, MEMBER)]
    assert entries(await platform.history(owned_by_old.conversation_id))[3:] == [
        (old, REMOVED, OWNER, f"merged into user {ana}"),
        (ana, ADDED, OWNER, f"merged from user {old}"),  # the role Ana gained
    ]
    assert members(await platform.get(admin_ana.conversation_id)) == [(caio, OWNER), (ana, ADMIN)]
    assert entries(await platform.history(admin_ana.conversation_id))[3:] == [(old, REMOVED, MEMBER, f"merged into user {ana}")]


async def test_a_direct_conversation_between_the_two_keeps_the_survivor_alone(platform):
    old, ana = await platform.user("old"), await platform.user("Ana")
    direct = await platform.create(DIRECT, old, ana)
    await platform.merge(old, ana)
    assert members(await platform.get(direct.conversation_id)) == [(ana, MEMBER)]
    assert entries(await platform.history(direct.conversation_id))[2:] == [(old, REMOVED, MEMBER, f"merged into user {ana}")]
    assert await platform.conversations_of(ana) == {direct.conversation_id}


async def test_a_direct_conversation_the_survivor_already_has_stays_the_pair(platform):
    old, ana, caio = await platform.user("old"), await platform.user("Ana"), await platform.user("Caio")
    olds = await platform.create(DIRECT, old, caio)
    anas = await platform.create(DIRECT, ana, caio)
    await platform.merge(old, ana)
    # Both histories stay Ana's; Ana's own conversation is still the one of the pair.
    assert await platform.conversations_of(ana) == {olds.conversation_id, anas.conversation_id}
    assert {u for u, _ in members(await platform.get(olds.conversation_id))} == {ana, caio}
    error = await rpc_error(platform.create(DIRECT, caio, ana))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and anas.conversation_id in error.details()


async def test_a_merged_user_becomes_a_member_of_nothing(platform, postgres_dsn):
    old, ana, caio = await platform.user("old"), await platform.user("Ana"), await platform.user("Caio")
    group = await platform.create(GROUP, pb.Member(user_id=caio, role=OWNER))
    await platform.merge(old, ana)
    request = crr.AddMemberRequest(request_id=rid(), conversation_id=group.conversation_id, member=pb.Member(user_id=old))
    error = await rpc_error(platform.conversations.AddMember(request))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and ana in error.details()
    # Even a request that checked the user just before the merge (the store, past that check)
    # is refused inside its transaction, after the merge was applied.
    pool = await postgres.open_pool(postgres_dsn)
    try:
        store = ConversationStore(pool)
        with pytest.raises(FailedPrecondition, match=ana):
            await store.add_member(uuid.uuid4(), b"digest", uuid.UUID(group.conversation_id), MemberSpec(uuid.UUID(old), MEMBER, 0))
        with pytest.raises(FailedPrecondition, match=ana):
            await store.create_conversation(uuid.uuid4(), b"digest", GROUP, "", [MemberSpec(uuid.UUID(old), OWNER, 0)], None)
    finally:
        await pool.close()
    assert [u for u, _ in members(await platform.get(group.conversation_id))] == [caio]


# Interrupted merges --------------------------------------------------------------------------


async def test_an_interrupted_merge_is_finished_by_a_retry(platform, postgres_dsn):
    old, ana = await platform.user("old", identity(TELEGRAM, "42")), await platform.user("Ana")
    group = await platform.create(GROUP, pb.Member(user_id=old, role=OWNER))
    request_id = rid()
    # A second users replica that cannot reach ConversationService commits the merge, then fails.
    async with users_service(postgres_dsn) as (_, cut_off):
        error = await rpc_error(platform.merge(old, ana, request_id, users=users_grpc.UserServiceStub(cut_off)))
    assert error.code() == grpc.StatusCode.UNAVAILABLE and "same request_id" in error.details()
    assert (await platform.get_user(old)).merged_into_user_id == ana
    assert (await platform.resolve(TELEGRAM, "42")).user_id == ana
    assert await platform.conversations_of(old) == {group.conversation_id}  # not moved yet
    assert await query(postgres_dsn, "SELECT memberships_moved_time FROM user_merges") == [(None,)]

    survivor = await platform.merge(old, ana, request_id)  # the client retries, as UNAVAILABLE invites
    assert survivor.user_id == ana and keys(survivor) == [(TELEGRAM, "42")]
    assert await platform.conversations_of(ana) == {group.conversation_id}
    assert await platform.conversations_of(old) == set()
    assert (await query(postgres_dsn, "SELECT memberships_moved_time IS NOT NULL FROM user_merges")) == [(True,)]


async def test_the_follow_up_finishes_a_merge_nobody_retried(postgres_dsn):
    async with users_and_conversations(postgres_dsn, merge_follow_up_seconds=0.2) as channels:
        platform = Platform(*channels)
        old, ana = await platform.user("old"), await platform.user("Ana")
        group = await platform.create(GROUP, old)
        async with users_service(postgres_dsn) as (_, cut_off):
            error = await rpc_error(platform.merge(old, ana, users=users_grpc.UserServiceStub(cut_off)))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        for _ in range(100):
            if await platform.conversations_of(ana):
                break
            await asyncio.sleep(0.1)
        assert await platform.conversations_of(ana) == {group.conversation_id}
        assert await platform.conversations_of(old) == set()


async def test_a_late_merge_lands_at_the_end_of_the_chain(platform, postgres_dsn):
    """A went into B, but its memberships had not moved when B went into C: they go straight to C."""
    a, b, c = await platform.user("A"), await platform.user("B"), await platform.user("C")
    of_a = await platform.create(GROUP, pb.Member(user_id=a, role=OWNER))
    of_b = await platform.create(GROUP, pb.Member(user_id=b, role=OWNER))
    request_id = rid()
    async with users_service(postgres_dsn) as (_, cut_off):
        await rpc_error(platform.merge(a, b, request_id, users=users_grpc.UserServiceStub(cut_off)))
    await platform.merge(b, c)
    await platform.merge(a, b, request_id)
    assert await platform.conversations_of(c) == {of_a.conversation_id, of_b.conversation_id}
    assert await platform.conversations_of(a) == await platform.conversations_of(b) == set()
    assert entries(await platform.history(of_a.conversation_id))[1:] == [
        (a, REMOVED, OWNER, f"merged into user {c}"),
        (c, ADDED, OWNER, f"merged from user {a}"),
    ]


# ApplyUserMerge, the internal half ------------------------------------------------------------


async def test_apply_user_merge_moves_only_for_a_real_merge_and_answers_the_same_on_repeat(platform):
    old, ana, caio = await platform.user("old"), await platform.user("Ana"), await platform.user("Caio")
    group = await platform.create(GROUP, pb.Member(user_id=old, role=OWNER))
    error = await rpc_error(platform.apply(old, ana))  # nobody merged them
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "not merged" in error.details()
    missing = rid()
    error = await rpc_error(platform.apply(missing, ana))
    assert error.code() == grpc.StatusCode.NOT_FOUND and missing in error.details()
    error = await rpc_error(platform.apply(ana, ana))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await rpc_error(platform.apply("x", ana))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "source_user_id" in error.details()
    assert await platform.conversations_of(old) == {group.conversation_id}

    await platform.merge(old, ana)
    assert await platform.apply(old, ana) == [group.conversation_id]  # the merge's answer, again
    error = await rpc_error(platform.apply(old, caio))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert len(await platform.history(group.conversation_id)) == 3


# Other processes' caches -----------------------------------------------------------------------


async def test_the_merge_is_announced_and_cached_lookups_follow_it(platform):
    old = await platform.user("old", identity(TELEGRAM, "42"))
    ana, caio = await platform.user("Ana"), await platform.user("Caio")
    group = await platform.create(GROUP, pb.Member(user_id=old, role=OWNER), caio)
    client = redis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    await pubsub.subscribe(change_feed.USERS, change_feed.CONVERSATIONS)
    # What the messaging service and the router read on every message, cached in-process.
    directory = Directory(client, platform.conversations, platform.users)
    await directory.start()
    try:
        assert keys(await directory.user(ana)) == []
        assert [m.user_id for m in (await directory.conversation(group.conversation_id)).members] == [old, caio]

        await platform.merge(old, ana)

        heard: set[tuple[str, str]] = set()
        wanted = {(change_feed.USERS, old), (change_feed.USERS, ana), (change_feed.CONVERSATIONS, group.conversation_id)}
        async with asyncio.timeout(10):
            while not wanted <= heard:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message:
                    heard.add((message["channel"].decode(), message["data"].decode()))
        async with asyncio.timeout(10):  # the directory's own subscription may hear it a moment later
            while keys(await directory.user(ana)) != [(TELEGRAM, "42")]:
                await asyncio.sleep(0.05)
            while [m.user_id for m in (await directory.conversation(group.conversation_id)).members] != [caio, ana]:
                await asyncio.sleep(0.05)
        assert (await directory.user(old)).merged_into_user_id == ana
    finally:
        await directory.stop()
        await pubsub.aclose()
        await client.aclose()
