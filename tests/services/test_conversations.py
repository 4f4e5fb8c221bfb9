"""ConversationService against real servers and PostgreSQL: conversations, members
checked against a running UserService, membership history, idempotent requests
and keyset pagination under concurrent inserts."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as pb, request_response_pb2 as rr, service_pb2_grpc
from chat4all.users.v1 import request_response_pb2 as users_rr, service_pb2_grpc as users_grpc

from tests.services.servers import conversations_service, execute, query, users_service
from tests.support.ports import free_port

DIRECT, GROUP = pb.CONVERSATION_TYPE_DIRECT, pb.CONVERSATION_TYPE_GROUP
OWNER, ADMIN, MEMBER = pb.MEMBER_ROLE_OWNER, pb.MEMBER_ROLE_ADMIN, pb.MEMBER_ROLE_MEMBER
ADDED, REMOVED = pb.MEMBERSHIP_ACTION_ADDED, pb.MEMBERSHIP_ACTION_REMOVED
WHATSAPP, TELEGRAM = channel_pb2.CHANNEL_WHATSAPP, channel_pb2.CHANNEL_TELEGRAM


class Services:
    def __init__(self, users_channel: grpc.aio.Channel, conversations_channel: grpc.aio.Channel) -> None:
        self.users = users_grpc.UserServiceStub(users_channel)
        self.conversations = service_pb2_grpc.ConversationServiceStub(conversations_channel)

    async def user(self, name: str = "someone") -> str:
        request = users_rr.CreateUserRequest(request_id=rid(), display_name=name)
        return (await self.users.CreateUser(request)).user.user_id

    async def create(self, kind: int, *members, title: str = "", binding=None, request_id: str | None = None):
        request = rr.CreateConversationRequest(
            request_id=rid() if request_id is None else request_id,
            type=kind,
            title=title,
            members=[m if isinstance(m, pb.Member) else pb.Member(user_id=m) for m in members],
            platform_binding=binding,
        )
        return (await self.conversations.CreateConversation(request, timeout=10)).conversation

    async def get(self, conversation_id: str) -> pb.Conversation:
        return (await self.conversations.GetConversation(rr.GetConversationRequest(conversation_id=conversation_id))).conversation

    async def add(self, conversation_id: str, user_id: str, role: int = 0, request_id: str | None = None):
        request = rr.AddMemberRequest(
            request_id=rid() if request_id is None else request_id, conversation_id=conversation_id, member=pb.Member(user_id=user_id, role=role)
        )
        return (await self.conversations.AddMember(request, timeout=10)).conversation

    async def remove(self, conversation_id: str, user_id: str, reason: str = "", request_id: str | None = None):
        request = rr.RemoveMemberRequest(
            request_id=rid() if request_id is None else request_id, conversation_id=conversation_id, user_id=user_id, reason=reason
        )
        return (await self.conversations.RemoveMember(request)).conversation

    async def history(self, conversation_id: str, page_size: int = 0) -> list[pb.MembershipChange]:
        changes, token = [], ""
        while True:
            request = rr.ListMembershipChangesRequest(conversation_id=conversation_id, page_size=page_size, page_token=token)
            response = await self.conversations.ListMembershipChanges(request)
            changes += response.membership_changes
            if not (token := response.next_page_token):
                return changes

    async def list(self, **fields) -> rr.ListConversationsResponse:
        return await self.conversations.ListConversations(rr.ListConversationsRequest(**fields))


@pytest.fixture
async def services(postgres_dsn):
    # Both services share the test's database, as they share one PostgreSQL in the platform.
    async with users_service(postgres_dsn) as (users_runtime, users_channel):
        async with conversations_service(postgres_dsn, f"127.0.0.1:{users_runtime.port}") as (_, channel):
            yield Services(users_channel, channel)


def rid() -> str:
    return str(uuid.uuid4())


def binding(group: str = "group-1", channel: int = WHATSAPP, account: str = "phone-1") -> pb.PlatformBinding:
    return pb.PlatformBinding(channel=channel, account_id=account, external_group_id=group)


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


def member_ids(conversation: pb.Conversation) -> list[str]:
    return [m.user_id for m in conversation.members]


async def count(dsn: str, table: str) -> int:
    return (await query(dsn, f"SELECT count(*) FROM {table}"))[0][0]


# CreateConversation / GetConversation -------------------------------------------------------


async def test_create_group_with_roles_binding_and_history(services, postgres_dsn):
    ana, bia, caio = await services.user("Ana"), await services.user("Bia"), await services.user("Caio")
    request_id = rid()
    created = await services.create(
        GROUP,
        pb.Member(user_id=ana, role=OWNER),
        pb.Member(user_id=bia, role=ADMIN, preferred_channel=TELEGRAM),
        pb.Member(user_id=caio),
        title="Family",
        binding=binding(),
        request_id=request_id,
    )
    assert uuid.UUID(created.conversation_id).version == 4
    assert created.type == GROUP and created.title == "Family"
    assert member_ids(created) == [ana, bia, caio]  # in the order given
    assert [m.role for m in created.members] == [OWNER, ADMIN, MEMBER]  # unspecified -> MEMBER
    assert [m.preferred_channel for m in created.members] == [0, TELEGRAM, 0]
    assert all(m.join_time.seconds > 0 for m in created.members)
    assert created.platform_binding == binding()
    assert created.create_time.seconds > 0 and created.update_time == created.create_time
    assert await services.get(created.conversation_id) == created

    history = await services.history(created.conversation_id)
    assert [(c.user_id, c.action, c.role, c.request_id) for c in history] == [
        (ana, ADDED, OWNER, request_id),
        (bia, ADDED, ADMIN, request_id),
        (caio, ADDED, MEMBER, request_id),
    ]
    assert await query(
        postgres_dsn,
        "SELECT conversation_id::text, type, title, binding_channel, binding_account_id, binding_external_group_id"
        " FROM conversations",
    ) == [(created.conversation_id, GROUP, "Family", WHATSAPP, "phone-1", "group-1")]
    assert await count(postgres_dsn, "conversation_members") == 3


async def test_direct_conversation_is_one_per_pair(services, postgres_dsn):
    ana, bia, caio = await services.user(), await services.user(), await services.user()
    direct = await services.create(DIRECT, ana, bia)
    assert direct.type == DIRECT and member_ids(direct) == [ana, bia] and not direct.HasField("platform_binding")
    error = await rpc_error(services.create(DIRECT, bia, ana))  # the same pair, either order
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert direct.conversation_id in error.details() and "direct" in error.details()
    await services.create(DIRECT, ana, caio)
    await services.create(GROUP, ana, bia)  # a group of the same two is another thing
    assert await count(postgres_dsn, "conversations") == 3


async def test_direct_and_group_shape_rules(services, postgres_dsn):
    ana, bia, caio = await services.user(), await services.user(), await services.user()
    cases = [
        (services.create(DIRECT, ana), "two members"),
        (services.create(DIRECT, ana, bia, caio), "two members"),
        (services.create(DIRECT, ana, ana), "members[1]"),
        (services.create(DIRECT, ana, bia, binding=binding()), "platform_binding"),
        (services.create(GROUP), "at least one member"),
        (services.create(GROUP, ana, bia, ana), "members[2]"),
        (services.create(pb.CONVERSATION_TYPE_UNSPECIFIED, ana, bia), "type"),
        (services.create(7, ana, bia), "type"),
        (services.create(GROUP, "not-a-uuid"), "members[0].user_id"),
        (services.create(GROUP, pb.Member(user_id=ana, role=9)), "members[0].role"),
        (services.create(GROUP, pb.Member(user_id=ana, preferred_channel=99)), "members[0].preferred_channel"),
        (services.create(GROUP, ana, binding=binding(channel=0)), "platform_binding.channel"),
        (services.create(GROUP, ana, binding=binding(channel=channel_pb2.CHANNEL_INTERNAL)), "platform_binding.channel"),
        (services.create(GROUP, ana, binding=binding(account="")), "platform_binding.account_id"),
        (services.create(GROUP, ana, binding=binding(group="")), "platform_binding.external_group_id"),
        (services.create(GROUP, ana, request_id=str(uuid.uuid1())), "request_id"),
        (services.create(GROUP, ana, request_id=""), "request_id"),
    ]
    for call, named in cases:
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, named
        assert named in error.details()
    assert await count(postgres_dsn, "conversations") == 0


async def test_platform_binding_is_unique(services, postgres_dsn):
    ana = await services.user()
    bound = await services.create(GROUP, ana, binding=binding("g1"))
    error = await rpc_error(services.create(GROUP, ana, binding=binding("g1")))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert bound.conversation_id in error.details() and "g1" in error.details()
    # The same group id under another account or platform is another group.
    await services.create(GROUP, ana, binding=binding("g1", account="phone-2"))
    await services.create(GROUP, ana, binding=binding("g1", channel=TELEGRAM))
    assert await count(postgres_dsn, "conversations") == 3


async def test_members_must_be_existing_users(services, postgres_dsn):
    ana, ghost = await services.user(), str(uuid.uuid4())
    error = await rpc_error(services.create(GROUP, ana, ghost))
    assert error.code() == grpc.StatusCode.NOT_FOUND and ghost in error.details()
    assert await count(postgres_dsn, "conversations") == 0


async def test_create_retry_returns_the_first_conversation_and_reuse_is_rejected(services, postgres_dsn):
    ana, bia = await services.user(), await services.user()
    request_id = rid()
    first = await services.create(GROUP, ana, bia, title="T", request_id=request_id)
    again = await services.create(GROUP, ana, bia, title="T", request_id=request_id)
    assert again == first
    error = await rpc_error(services.create(GROUP, ana, bia, title="Other", request_id=request_id))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert request_id in error.details() and "different request" in error.details()
    assert await count(postgres_dsn, "conversations") == 1
    assert await count(postgres_dsn, "conversation_membership_changes") == 2


async def test_ten_concurrent_identical_creates_make_one_conversation(services, postgres_dsn):
    ana, bia = await services.user(), await services.user()
    request_id = rid()
    created = await asyncio.gather(*(services.create(GROUP, ana, bia, request_id=request_id) for _ in range(10)))
    assert len({c.conversation_id for c in created}) == 1
    assert await count(postgres_dsn, "conversations") == 1
    assert await count(postgres_dsn, "conversation_members") == 2
    assert await count(postgres_dsn, "conversation_membership_changes") == 2


async def test_ten_concurrent_binds_of_one_platform_group_make_one_conversation(services, postgres_dsn):
    ana = await services.user()
    results = await asyncio.gather(
        *(services.create(GROUP, ana, binding=binding("g-race")) for _ in range(10)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, pb.Conversation)]
    assert len(winners) == 1
    for error in results:
        if error is not winners[0]:
            assert error.code() == grpc.StatusCode.ALREADY_EXISTS and winners[0].conversation_id in error.details()
    assert await count(postgres_dsn, "conversations") == 1


async def test_get_conversation_errors(services):
    missing = str(uuid.uuid4())
    error = await rpc_error(services.get(missing))
    assert error.code() == grpc.StatusCode.NOT_FOUND and missing in error.details()
    error = await rpc_error(services.get("x"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "conversation_id" in error.details()


async def test_unreachable_user_service_is_unavailable(postgres_dsn):
    dead = f"127.0.0.1:{free_port()}"
    async with conversations_service(postgres_dsn, dead) as (_, channel):
        stub = service_pb2_grpc.ConversationServiceStub(channel)
        request = rr.CreateConversationRequest(request_id=rid(), type=GROUP, members=[pb.Member(user_id=rid())])
        error = await rpc_error(stub.CreateConversation(request, timeout=30))
    assert error.code() == grpc.StatusCode.UNAVAILABLE and "user service" in error.details()
    assert await count(postgres_dsn, "conversations") == 0


# AddMember / RemoveMember / ListMembershipChanges --------------------------------------------


async def test_add_member_records_it_and_a_retry_changes_nothing(services, postgres_dsn):
    ana, bia = await services.user(), await services.user()
    group = await services.create(GROUP, pb.Member(user_id=ana, role=OWNER))
    request_id = rid()
    added = await services.add(group.conversation_id, bia, ADMIN, request_id=request_id)
    assert member_ids(added) == [ana, bia] and added.members[1].role == ADMIN
    assert added.update_time.ToDatetime() > group.update_time.ToDatetime()
    assert await services.add(group.conversation_id, bia, ADMIN, request_id=request_id) == added
    error = await rpc_error(services.add(group.conversation_id, bia, MEMBER, request_id=request_id))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and request_id in error.details()
    history = await services.history(group.conversation_id)
    assert [(c.user_id, c.action, c.role) for c in history] == [(ana, ADDED, OWNER), (bia, ADDED, ADMIN)]
    assert history[1].request_id == request_id
    assert await services.get(group.conversation_id) == added


async def test_add_member_errors(services, postgres_dsn):
    ana, bia, ghost = await services.user(), await services.user(), str(uuid.uuid4())
    group = await services.create(GROUP, ana)
    direct = await services.create(DIRECT, ana, bia)

    error = await rpc_error(services.add(group.conversation_id, ana))  # already a member, new request
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and ana in error.details()
    error = await rpc_error(services.add(group.conversation_id, ghost))
    assert error.code() == grpc.StatusCode.NOT_FOUND and ghost in error.details()
    missing = str(uuid.uuid4())
    error = await rpc_error(services.add(missing, bia))
    assert error.code() == grpc.StatusCode.NOT_FOUND and missing in error.details()
    error = await rpc_error(services.add(direct.conversation_id, await services.user()))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "direct" in error.details()
    error = await rpc_error(services.add("x", bia))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "conversation_id" in error.details()
    request = rr.AddMemberRequest(request_id=rid(), conversation_id=group.conversation_id)
    error = await rpc_error(services.conversations.AddMember(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "member" in error.details()

    assert member_ids(await services.get(group.conversation_id)) == [ana]
    assert len(await services.history(group.conversation_id)) == 1
    assert await count(postgres_dsn, "conversation_membership_changes") == 3  # 1 in the group, 2 in the direct


async def test_remove_member_keeps_history_and_a_retry_changes_nothing(services):
    ana, bia = await services.user(), await services.user()
    group = await services.create(GROUP, pb.Member(user_id=ana, role=OWNER), pb.Member(user_id=bia, role=ADMIN))
    request_id = rid()
    removed = await services.remove(group.conversation_id, bia, reason="left the family", request_id=request_id)
    assert member_ids(removed) == [ana]
    assert await services.remove(group.conversation_id, bia, reason="left the family", request_id=request_id) == removed
    error = await rpc_error(services.remove(group.conversation_id, bia))
    assert error.code() == grpc.StatusCode.NOT_FOUND and bia in error.details()

    await services.add(group.conversation_id, bia)  # rejoins, as a plain member
    history = await services.history(group.conversation_id)
    assert [(c.user_id, c.action, c.role, c.reason) for c in history] == [
        (ana, ADDED, OWNER, ""),
        (bia, ADDED, ADMIN, ""),
        (bia, REMOVED, ADMIN, "left the family"),
        (bia, ADDED, MEMBER, ""),
    ]
    assert history[2].request_id == request_id
    assert [c.change_time.ToDatetime() for c in history] == sorted(c.change_time.ToDatetime() for c in history)


async def test_remove_member_errors(services):
    ana, bia, caio = await services.user(), await services.user(), await services.user()
    group = await services.create(GROUP, pb.Member(user_id=ana, role=OWNER), bia)
    direct = await services.create(DIRECT, ana, bia)

    error = await rpc_error(services.remove(group.conversation_id, ana))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "last owner" in error.details()
    error = await rpc_error(services.remove(direct.conversation_id, ana))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "direct" in error.details()
    error = await rpc_error(services.remove(group.conversation_id, caio))
    assert error.code() == grpc.StatusCode.NOT_FOUND and caio in error.details()
    missing = str(uuid.uuid4())
    error = await rpc_error(services.remove(missing, ana))
    assert error.code() == grpc.StatusCode.NOT_FOUND and missing in error.details()
    error = await rpc_error(services.remove(group.conversation_id, "x"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "user_id" in error.details()
    assert member_ids(await services.get(group.conversation_id)) == [ana, bia]
    assert len(await services.history(group.conversation_id)) == 2

    # With a second owner the first may go.
    await services.add(group.conversation_id, caio, OWNER)
    assert member_ids(await services.remove(group.conversation_id, ana)) == [bia, caio]


async def test_concurrent_membership_changes_are_numbered_without_gaps(services, postgres_dsn):
    owner = await services.user()
    group = await services.create(GROUP, pb.Member(user_id=owner, role=OWNER))
    newcomers = [await services.user() for _ in range(10)]
    await asyncio.gather(*(services.add(group.conversation_id, user) for user in newcomers))
    assert sorted(member_ids(await services.get(group.conversation_id))) == sorted([owner, *newcomers])
    rows = await query(
        postgres_dsn,
        "SELECT seq FROM conversation_membership_changes WHERE conversation_id = %s ORDER BY seq",
        (group.conversation_id,),
    )
    assert [r[0] for r in rows] == list(range(1, 12))


async def test_membership_history_pages_oldest_first_while_it_grows(services):
    owner = await services.user()
    group = await services.create(GROUP, pb.Member(user_id=owner, role=OWNER))
    users = [await services.user() for _ in range(6)]
    for user in users[:4]:
        await services.add(group.conversation_id, user)

    seen, token = [], ""
    for step in range(10):
        request = rr.ListMembershipChangesRequest(conversation_id=group.conversation_id, page_size=2, page_token=token)
        page = await services.conversations.ListMembershipChanges(request)
        assert len(page.membership_changes) <= 2
        seen += [(c.user_id, c.action) for c in page.membership_changes]
        if step == 0:  # history grows between pages
            await services.add(group.conversation_id, users[4])
            await services.remove(group.conversation_id, users[0])
            await services.add(group.conversation_id, users[5])
        if not (token := page.next_page_token):
            break
    assert seen == [
        (owner, ADDED),
        *[(u, ADDED) for u in users[:4]],
        (users[4], ADDED),
        (users[0], REMOVED),
        (users[5], ADDED),
    ]


async def test_list_membership_changes_errors(services):
    ana = await services.user()
    one, other = await services.create(GROUP, ana), await services.create(GROUP, ana)
    await services.add(one.conversation_id, await services.user())
    first = await services.conversations.ListMembershipChanges(
        rr.ListMembershipChangesRequest(conversation_id=one.conversation_id, page_size=1)
    )
    assert first.next_page_token
    cases = [
        (rr.ListMembershipChangesRequest(conversation_id=other.conversation_id, page_token=first.next_page_token), "another request"),
        (rr.ListMembershipChangesRequest(conversation_id=one.conversation_id, page_token="garbage!"), "page_token"),
        (rr.ListMembershipChangesRequest(conversation_id=one.conversation_id, page_size=-1), "page_size"),
        (rr.ListMembershipChangesRequest(conversation_id="x"), "conversation_id"),
    ]
    for request, named in cases:
        error = await rpc_error(services.conversations.ListMembershipChanges(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, named
        assert named in error.details()
    missing = str(uuid.uuid4())
    error = await rpc_error(services.conversations.ListMembershipChanges(rr.ListMembershipChangesRequest(conversation_id=missing)))
    assert error.code() == grpc.StatusCode.NOT_FOUND and missing in error.details()


# ListConversations -------------------------------------------------------------------------


async def test_list_pages_newest_first_without_gaps_or_duplicates_while_rows_are_inserted(services):
    ana = await services.user()
    before = [(await services.create(GROUP, ana, title=f"old-{n}")).conversation_id for n in range(7)]
    seen, token, inserted = [], "", []
    while True:
        page = await services.list(page_size=3, page_token=token)
        assert len(page.conversations) <= 3
        seen += [c.conversation_id for c in page.conversations]
        # Newer conversations arrive between pages; they belong before the cursor.
        inserted += [(await services.create(GROUP, ana, title="new")).conversation_id for _ in range(2)]
        if not (token := page.next_page_token):
            break
    assert seen == list(reversed(before))
    everything = await services.list(page_size=1000)
    assert [c.conversation_id for c in everything.conversations] == list(reversed(before + inserted))
    assert not everything.next_page_token
    assert all(c.members and c.members[0].user_id == ana for c in everything.conversations)


async def test_list_default_page_size_is_50(services):
    ana = await services.user()
    for _ in range(51):
        await services.create(GROUP, ana)
    first = await services.list()
    assert len(first.conversations) == 50 and first.next_page_token
    second = await services.list(page_token=first.next_page_token)
    assert len(second.conversations) == 1 and not second.next_page_token
    exact = await services.list(page_size=51)
    assert len(exact.conversations) == 51 and not exact.next_page_token  # no empty last page


async def test_page_size_above_1000_is_treated_as_1000(services, postgres_dsn):
    await execute(
        postgres_dsn,
        "INSERT INTO conversations (conversation_id, type, create_time, update_time)"
        " SELECT gen_random_uuid(), 2, t, t FROM generate_series(1, 1001) AS n,"
        " LATERAL (SELECT now() - n * interval '1 second' AS t) AS times",
    )
    first = await services.list(page_size=5000)
    assert len(first.conversations) == 1000 and first.next_page_token
    rest = await services.list(page_size=5000, page_token=first.next_page_token)
    assert len(rest.conversations) == 1 and not rest.next_page_token


async def test_list_by_current_member(services):
    ana, bia, caio = await services.user(), await services.user(), await services.user()
    with_bia = await services.create(GROUP, pb.Member(user_id=ana, role=OWNER), bia)
    direct = await services.create(DIRECT, bia, caio)
    await services.create(GROUP, ana, caio)
    left = await services.create(GROUP, pb.Member(user_id=ana, role=OWNER), bia)
    await services.remove(left.conversation_id, bia)

    listed = await services.list(member_user_id=bia)
    assert [c.conversation_id for c in listed.conversations] == [direct.conversation_id, with_bia.conversation_id]
    first = await services.list(member_user_id=bia, page_size=1)
    assert [c.conversation_id for c in first.conversations] == [direct.conversation_id]
    second = await services.list(member_user_id=bia, page_size=1, page_token=first.next_page_token)
    assert [c.conversation_id for c in second.conversations] == [with_bia.conversation_id]
    assert not second.next_page_token
    assert not (await services.list(member_user_id=str(uuid.uuid4()))).conversations


async def test_list_by_platform_binding_finds_the_bound_conversation(services):
    ana = await services.user()
    bound = await services.create(GROUP, ana, binding=binding("g1"))
    await services.create(GROUP, ana, binding=binding("g2"))
    await services.create(GROUP, ana)
    listed = await services.list(platform_binding=binding("g1"))
    assert [c.conversation_id for c in listed.conversations] == [bound.conversation_id]
    assert listed.conversations[0].platform_binding == binding("g1")
    assert not (await services.list(platform_binding=binding("g1", account="phone-2"))).conversations


async def test_list_rejects_foreign_or_malformed_tokens(services):
    ana, bia = await services.user(), await services.user()
    for _ in range(3):
        await services.create(GROUP, ana, bia)
    page = await services.list(member_user_id=ana, page_size=1)
    cases = [
        (dict(member_user_id=bia, page_token=page.next_page_token), "another request"),
        (dict(page_token=page.next_page_token), "another request"),
        (dict(page_token="not a token"), "page_token"),
        (dict(page_token="eyJzIjoxfQ"), "page_token"),  # valid base64 JSON, wrong shape
        (dict(page_size=-5), "page_size"),
        (dict(member_user_id="x"), "member_user_id"),
        (dict(platform_binding=binding(channel=0)), "platform_binding.channel"),
    ]
    for fields, named in cases:
        error = await rpc_error(services.list(**fields))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, named
        assert named in error.details()
    # A token may continue with another page size.
    rest = await services.list(member_user_id=ana, page_size=10, page_token=page.next_page_token)
    assert len(rest.conversations) == 2


async def test_every_lookup_path_has_an_index(services, postgres_dsn):
    indexes = " | ".join(
        row[0]
        for row in await query(postgres_dsn, "SELECT indexdef FROM pg_indexes WHERE tablename LIKE 'conversation%%'")
    )
    for fragment in [
        "conversations USING btree (create_time DESC, conversation_id DESC)",
        "conversations USING btree (owner_client_id, create_time DESC, conversation_id DESC)",  # a client's listing
        "UNIQUE INDEX conversations_by_platform_binding",
        "UNIQUE INDEX conversations_direct_pair",
        "conversation_members USING btree (user_id, conversation_id)",
        "conversation_membership_changes_pkey ON public.conversation_membership_changes USING btree (conversation_id, seq)",
        "conversation_requests_pkey ON public.conversation_requests USING btree (request_id)",
    ]:
        assert fragment in indexes


async def test_conversations_are_read_from_the_shared_cache_and_a_membership_change_drops_the_copy(services, postgres_dsn):
    ana, bia, caio = await services.user(), await services.user(), await services.user()
    group = await services.create(GROUP, pb.Member(user_id=ana, role=OWNER), bia)
    assert set(member_ids(await services.get(group.conversation_id))) == {ana, bia}
    # The copy is what every replica reads now: a row changed behind the service's back is not seen ...
    await execute(postgres_dsn, "UPDATE conversations SET title = 'changed behind its back' WHERE conversation_id = %s",
                  (group.conversation_id,))
    assert (await services.get(group.conversation_id)).title == ""
    # ... while a change made through the service is, from its answer on.
    await services.add(group.conversation_id, caio)
    fresh = await services.get(group.conversation_id)
    assert fresh.title == "changed behind its back" and set(member_ids(fresh)) == {ana, bia, caio}
    await services.remove(group.conversation_id, bia)
    assert set(member_ids(await services.get(group.conversation_id))) == {ana, caio}
