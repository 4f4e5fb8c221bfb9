"""Client isolation (issue 7) against real servers, PostgreSQL, Redis and Kafka: every user,
conversation, message, dead letter and webhook belongs to the client whose call created it,
the client the front door names in x-chat4all-client-id. Another client's is NOT_FOUND with
the very answer an unknown id gets, and nothing of it comes back; lists show the caller's
only; internal calls (no client id) reach everything. The inbound path creates what it
creates for the client owning the platform accounts. Files: tests/files/test_file_isolation.py."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

import grpc
import psycopg
import pytest
from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as conv_pb, request_response_pb2 as conv_rr
from chat4all.conversations.v1 import service_pb2_grpc as conv_grpc
from chat4all.events.v1 import event_pb2
from chat4all.files.v1 import message_pb2 as files_pb, request_response_pb2 as files_rr, service_pb2_grpc as files_grpc
from chat4all.messaging.v1 import message_pb2 as msg_pb, request_response_pb2 as msg_rr
from chat4all.messaging.v1 import service_pb2_grpc as msg_grpc
from chat4all.users.v1 import message_pb2 as users_pb, request_response_pb2 as users_rr
from chat4all.users.v1 import service_pb2_grpc as users_grpc
from chat4all.webhooks.v1 import message_pb2 as hooks_pb, request_response_pb2 as hooks_rr
from chat4all.webhooks.v1 import service_pb2_grpc as hooks_grpc

from services.messaging import servicer as messaging, store, topics
from services.messaging.settings import MessagingSettings
from services.router.inbound import InboundIngest
from services.runtime import kafka
from services.runtime.config import load_settings
from services.webhooks import servicer as webhooks
from services.webhooks.settings import WebhookSettings
from tests.files.client import files_service
from tests.services.clients import AsClient, not_found, rpc_error, stream_error
from tests.services.servers import conversations_service, execute, query, serving, users_service
from tests.support.ports import free_port

A, B = "client-a", "client-b"
WHATSAPP = channel_pb2.CHANNEL_WHATSAPP
GROUP, DIRECT = conv_pb.CONVERSATION_TYPE_GROUP, conv_pb.CONVERSATION_TYPE_DIRECT
OWNER = conv_pb.MEMBER_ROLE_OWNER
NOWHERE = "127.0.0.1:1"  # no clamd: these files are never processed, a test marks them CLEAN


def rid() -> str:
    return str(uuid.uuid4())


def identity(external_id: str) -> users_pb.ExternalIdentity:
    return users_pb.ExternalIdentity(channel=WHATSAPP, external_id=external_id)


def binding(group: str) -> conv_pb.PlatformBinding:
    return conv_pb.PlatformBinding(channel=WHATSAPP, account_id="phone-1", external_group_id=group)


class Caller:
    """The API as one caller sees it: a client, or (None) an internal caller."""

    def __init__(self, channels: dict[str, grpc.aio.Channel], client: str | None) -> None:
        self.client = client
        self.users = AsClient(users_grpc.UserServiceStub(channels["users"]), client)
        self.conversations = AsClient(conv_grpc.ConversationServiceStub(channels["conversations"]), client)
        self.messages = AsClient(msg_grpc.MessageServiceStub(channels["messaging"]), client)
        self.files = AsClient(files_grpc.FileServiceStub(channels["files"]), client)
        self.webhooks = AsClient(hooks_grpc.WebhookServiceStub(channels["webhooks"]), client)

    async def user(self, name: str, *identities: users_pb.ExternalIdentity) -> str:
        request = users_rr.CreateUserRequest(request_id=rid(), display_name=name, identities=identities)
        return (await self.users.CreateUser(request)).user.user_id

    async def get_user(self, user_id: str) -> users_pb.User:
        return (await self.users.GetUser(users_rr.GetUserRequest(user_id=user_id))).user

    async def resolve(self, external_id: str) -> str:
        request = users_rr.ResolveIdentityRequest(channel=WHATSAPP, external_id=external_id)
        return (await self.users.ResolveIdentity(request)).user.user_id

    async def group(self, owner: str, *members: str, bound_to: str = "") -> str:
        request = conv_rr.CreateConversationRequest(
            request_id=rid(),
            type=GROUP,
            members=[conv_pb.Member(user_id=owner, role=OWNER), *(conv_pb.Member(user_id=m) for m in members)],
            platform_binding=binding(bound_to) if bound_to else None,
        )
        return (await self.conversations.CreateConversation(request)).conversation.conversation_id

    async def get_conversation(self, conversation_id: str) -> conv_pb.Conversation:
        request = conv_rr.GetConversationRequest(conversation_id=conversation_id)
        return (await self.conversations.GetConversation(request)).conversation

    async def conversation_ids(self, **filters) -> list[str]:
        found, token = [], ""
        while True:
            request = conv_rr.ListConversationsRequest(page_size=2, page_token=token, **filters)
            page = await self.conversations.ListConversations(request)
            found += [c.conversation_id for c in page.conversations]
            if not (token := page.next_page_token):
                return found

    def send(self, conversation_id: str, sender: str, text: str = "hi", file_ids=()):
        content = msg_pb.MessageContent(text=text, attachments=[msg_pb.Attachment(file_id=f) for f in file_ids])
        request = msg_rr.SendMessageRequest(
            request_id=rid(), conversation_id=conversation_id, sender_user_id=sender, content=content
        )
        return self.messages.SendMessage(request)

    def list_messages(self, conversation_id: str):
        return self.messages.ListMessages(msg_rr.ListMessagesRequest(conversation_id=conversation_id))

    def stream_conversation(self, conversation_id: str, after_cursor: str = ""):
        request = msg_rr.StreamConversationEventsRequest(conversation_id=conversation_id, after_cursor=after_cursor)
        return self.messages.StreamConversationEvents(request)

    def stream_user(self, user_id: str):
        return self.messages.StreamUserEvents(msg_rr.StreamUserEventsRequest(user_id=user_id))

    async def dead_letter_ids(self, conversation_id: str = "", page_size: int = 0) -> list[str]:
        found, token = [], ""
        while True:
            request = msg_rr.ListDeadLettersRequest(conversation_id=conversation_id, page_size=page_size, page_token=token)
            page = await self.messages.ListDeadLetters(request)
            found += [d.dead_letter_id for d in page.dead_letters]
            if not (token := page.next_page_token):
                return found

    def create_webhook(self, conversation_ids=(), user_id: str = ""):
        scope = (
            hooks_pb.WebhookFilter(user_id=user_id)
            if user_id
            else hooks_pb.WebhookFilter(conversations=hooks_pb.ConversationSet(conversation_ids=list(conversation_ids)))
        )
        request = hooks_rr.CreateWebhookRequest(request_id=rid(), url="http://127.0.0.1:1/hook", filter=scope)
        return self.webhooks.CreateWebhook(request)

    async def webhook_ids(self) -> list[str]:
        return [w.webhook_id for w in (await self.webhooks.ListWebhooks(hooks_rr.ListWebhooksRequest())).webhooks]


class Platform:
    def __init__(self, dsn: str, channels: dict[str, grpc.aio.Channel], kafka_bootstrap: str) -> None:
        self.dsn = dsn
        self.channels = channels
        self.kafka_bootstrap = kafka_bootstrap
        self.a, self.b, self.internal = Caller(channels, A), Caller(channels, B), Caller(channels, None)

    # What the router writes: a stored message with its event, a dead letter.

    async def post(self, conversation_id: str, text: str) -> str:
        message = msg_pb.Message(message_id=rid(), conversation_id=conversation_id, content=msg_pb.MessageContent(text=text))
        message.create_time.GetCurrentTime()
        event = msg_pb.ConversationEvent(conversation_id=conversation_id, message_created=message)
        event.occur_time.CopyFrom(message.create_time)
        async with await psycopg.AsyncConnection.connect(self.dsn) as conn, conn.transaction():
            seq = await store.append_event(conn, event)
            assert await store.insert_message(conn, message, seq, None, None)
        return message.message_id

    async def dead_letter(self, conversation_id: str) -> str:
        message_id = await self.post(conversation_id, "undeliverable")
        dead_letter = msg_pb.DeadLetter(
            dead_letter_id=rid(), message_id=message_id, conversation_id=conversation_id, reason="platform said no",
            recipient=msg_pb.Recipient(user_id=rid(), channel=WHATSAPP, external_id="5511"),
            state=msg_pb.DeadLetterState.DEAD_LETTER_STATE_PENDING,
        )
        dead_letter.last_failure_time.FromDatetime(datetime.now(UTC))  # microseconds, as stored
        async with await psycopg.AsyncConnection.connect(self.dsn) as conn, conn.transaction():
            await store.park_dead_letter(conn, dead_letter)
        return dead_letter.dead_letter_id


@pytest.fixture
async def platform(postgres_dsn, kafka_bootstrap, s3_server):
    await kafka.ensure_topics(kafka_bootstrap, topics.PARTITIONS)
    async with contextlib.AsyncExitStack() as stack:
        conversations_port = free_port()
        users_runtime, users = await stack.enter_async_context(
            users_service(postgres_dsn, f"127.0.0.1:{conversations_port}")
        )
        users_target, conversations_target = f"127.0.0.1:{users_runtime.port}", f"127.0.0.1:{conversations_port}"
        _, conversations = await stack.enter_async_context(
            conversations_service(postgres_dsn, users_target, grpc_port=conversations_port)
        )
        files_runtime, files = await stack.enter_async_context(
            files_service(postgres_dsn, s3_server, NOWHERE, processing_concurrency=0)
        )
        messaging_runtime, messages = await stack.enter_async_context(
            serving(
                messaging, MessagingSettings, postgres_dsn, kafka_bootstrap=kafka_bootstrap, users_target=users_target,
                conversations_target=conversations_target, files_target=f"127.0.0.1:{files_runtime.port}",
            )
        )
        _, hooks = await stack.enter_async_context(
            serving(
                webhooks, WebhookSettings, postgres_dsn, messaging_target=f"127.0.0.1:{messaging_runtime.port}",
                deliver_to_private_networks=True,
            )
        )
        channels = {"users": users, "conversations": conversations, "messaging": messages, "files": files, "webhooks": hooks}
        yield Platform(postgres_dsn, channels, kafka_bootstrap)


def same_answer(theirs: str, unknown: str, their_id: str, unknown_id: str) -> bool:
    """Whether another client's resource was answered exactly as an unknown id."""
    return theirs == unknown.replace(unknown_id, their_id)


# Users ------------------------------------------------------------------------------------------


async def test_a_clients_users_are_unknown_to_another_client(platform):
    a, b, internal = platform.a, platform.b, platform.internal
    ana = await a.user("Ana", identity("5511"))
    bia = await b.user("Bia")
    # A reads first, so B's reads below are answered from the shared cache's copy too.
    assert (await a.get_user(ana)).display_name == "Ana"
    missing = rid()
    unknown = await not_found(b.users.GetUser(users_rr.GetUserRequest(user_id=missing)))
    assert same_answer(await not_found(b.users.GetUser(users_rr.GetUserRequest(user_id=ana))), unknown, ana, missing)

    link = users_rr.LinkIdentityRequest(request_id=rid(), user_id=ana, identity=identity("5599"))
    unlink = users_rr.UnlinkIdentityRequest(request_id=rid(), user_id=ana, channel=WHATSAPP, external_id="5511")
    merge_in = users_rr.MergeUsersRequest(request_id=rid(), source_user_id=ana, target_user_id=bia)
    merge_out = users_rr.MergeUsersRequest(request_id=rid(), source_user_id=bia, target_user_id=ana)
    for call in (b.users.LinkIdentity(link), b.users.UnlinkIdentity(unlink), b.users.MergeUsers(merge_in), b.users.MergeUsers(merge_out)):
        assert ana in await not_found(call)
    stream = await stream_error(b.stream_user(ana))
    assert stream.code() == grpc.StatusCode.NOT_FOUND
    # Nothing changed, as A and an internal caller see.
    for caller in (a, internal):
        user = await caller.get_user(ana)
        assert [i.external_id for i in user.identities] == ["5511"] and not user.merged_into_user_id
    assert not (await b.get_user(bia)).merged_into_user_id
    assert (await internal.get_user(bia)).display_name == "Bia"


async def test_identities_are_per_client_and_resolve_within_the_callers_users(platform):
    a, b, internal = platform.a, platform.b, platform.internal
    ana = await a.user("Ana", identity("5511"))
    assert await a.resolve("5511") == ana
    assert "5511" in await not_found(b.users.ResolveIdentity(users_rr.ResolveIdentityRequest(channel=WHATSAPP, external_id="5511")))
    # The same number may be a user of another client, and of nobody's (internal) as well.
    bia = await b.user("Bia", identity("5511"))
    assert await b.resolve("5511") == bia and await a.resolve("5511") == ana
    await not_found(internal.users.ResolveIdentity(users_rr.ResolveIdentityRequest(channel=WHATSAPP, external_id="5511")))
    someone = await internal.user("Someone", identity("5511"))
    assert await internal.resolve("5511") == someone
    # Within one client the rule stands: an identity belongs to one user.
    error = await rpc_error(a.users.CreateUser(users_rr.CreateUserRequest(request_id=rid(), display_name="Ana 2", identities=[identity("5511")])))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    # Users of two clients never merge, not even by an internal caller.
    error = await rpc_error(internal.users.MergeUsers(users_rr.MergeUsersRequest(request_id=rid(), source_user_id=bia, target_user_id=ana)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "different clients" in error.details()
    assert await query(platform.dsn, "SELECT owner_client_id, count(*) FROM user_identities GROUP BY 1 ORDER BY 1") == [
        ("", 1), (A, 1), (B, 1),
    ]


async def test_a_request_id_of_another_client_is_never_answered_with_its_result(platform):
    request = users_rr.CreateUserRequest(request_id=rid(), display_name="Ana")
    ana = (await platform.a.users.CreateUser(request)).user.user_id
    error = await rpc_error(platform.b.users.CreateUser(request))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and ana not in error.details()
    assert (await platform.a.users.CreateUser(request)).user.user_id == ana  # A's own retry still answers


# Conversations ---------------------------------------------------------------------------------


async def test_a_clients_conversations_are_unknown_to_another_client(platform):
    a, b, internal = platform.a, platform.b, platform.internal
    ana, bruno = await a.user("Ana"), await a.user("Bruno")
    bia = await b.user("Bia")
    group = await a.group(ana, bruno, bound_to="g1")
    assert len((await a.get_conversation(group)).members) == 2  # cached from here on
    missing = rid()
    unknown = await not_found(b.conversations.GetConversation(conv_rr.GetConversationRequest(conversation_id=missing)))
    theirs = await not_found(b.conversations.GetConversation(conv_rr.GetConversationRequest(conversation_id=group)))
    assert same_answer(theirs, unknown, group, missing)
    for call in (
        b.conversations.ListMembershipChanges(conv_rr.ListMembershipChangesRequest(conversation_id=group)),
        b.conversations.AddMember(conv_rr.AddMemberRequest(request_id=rid(), conversation_id=group, member=conv_pb.Member(user_id=bia))),
        b.conversations.RemoveMember(conv_rr.RemoveMemberRequest(request_id=rid(), conversation_id=group, user_id=bruno)),
    ):
        assert group in await not_found(call)
    # Members must be the caller's users: another client's is NOT_FOUND, named.
    assert ana in await not_found(b.group(bia, ana))
    assert bia in await not_found(
        a.conversations.AddMember(conv_rr.AddMemberRequest(request_id=rid(), conversation_id=group, member=conv_pb.Member(user_id=bia)))
    )
    for caller in (a, internal):
        assert {m.user_id for m in (await caller.get_conversation(group)).members} == {ana, bruno}
    assert len((await internal.conversations.ListMembershipChanges(conv_rr.ListMembershipChangesRequest(conversation_id=group))).membership_changes) == 2


async def test_lists_show_the_callers_conversations_and_bindings_are_per_client(platform):
    a, b, internal = platform.a, platform.b, platform.internal
    ana, bruno, bia = await a.user("Ana"), await a.user("Bruno"), await b.user("Bia")
    mine = [await a.group(ana, bound_to="g1"), await a.group(ana, bruno), await a.group(bruno)]
    # The same platform group may be mirrored by each client (the router finds its owner's).
    theirs = await b.group(bia, bound_to="g1")
    unowned = await internal.group(ana)
    assert await a.conversation_ids() == list(reversed(mine))
    assert await b.conversation_ids() == [theirs]
    assert await a.conversation_ids(member_user_id=ana) == [mine[1], mine[0]]
    assert await b.conversation_ids(member_user_id=ana) == []
    assert await a.conversation_ids(platform_binding=binding("g1")) == [mine[0]]
    assert await b.conversation_ids(platform_binding=binding("g1")) == [theirs]
    assert set(await internal.conversation_ids()) == {*mine, theirs, unowned}
    assert set(await internal.conversation_ids(platform_binding=binding("g1"))) == {mine[0], theirs}
    # Within one client a platform group is still bound once.
    error = await rpc_error(a.group(bruno, bound_to="g1"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and mine[0] in error.details()


# Messages --------------------------------------------------------------------------------------


async def test_a_clients_messages_are_unknown_to_another_client(platform):
    a, b, internal = platform.a, platform.b, platform.internal
    ana, bruno, bia = await a.user("Ana"), await a.user("Bruno"), await b.user("Bia")
    chat = await a.group(ana, bruno)
    theirs = await b.group(bia)
    message_id = await platform.post(chat, "for A's eyes")

    # Send: another client's conversation is NOT_FOUND as an unknown one; nothing is accepted.
    missing = rid()
    unknown = await not_found(b.send(missing, bia))
    assert same_answer(await not_found(b.send(chat, ana)), unknown, chat, missing)
    assert await query(platform.dsn, "SELECT count(*) FROM idempotency_keys WHERE client_id = %s", (B,)) == [(0,)]
    assert (await a.send(chat, ana)).message_id
    assert (await b.send(theirs, bia)).message_id

    # Get, list history, both streams.
    missing = rid()
    unknown = await not_found(b.messages.GetMessage(msg_rr.GetMessageRequest(message_id=missing)))
    theirs_answer = await not_found(b.messages.GetMessage(msg_rr.GetMessageRequest(message_id=message_id)))
    assert same_answer(theirs_answer, unknown, message_id, missing)
    assert chat in await not_found(b.list_messages(chat))
    assert (await stream_error(b.stream_conversation(chat))).code() == grpc.StatusCode.NOT_FOUND
    assert (await stream_error(b.stream_user(ana))).code() == grpc.StatusCode.NOT_FOUND
    for caller in (a, internal):
        got = (await caller.messages.GetMessage(msg_rr.GetMessageRequest(message_id=message_id))).message
        assert got.content.text == "for A's eyes"
        assert [m.message_id for m in (await caller.list_messages(chat)).messages] == [message_id]

    # A's own stream works.
    cursor = (await a.list_messages(chat)).events_cursor
    later = await platform.post(chat, "later")
    call = a.stream_conversation(chat, cursor)
    async with asyncio.timeout(10):
        response = await call.read()
    assert response.event.message_created.message_id == later
    call.cancel()


async def test_a_clients_user_stream_carries_only_that_clients_conversations(platform):
    a, internal = platform.a, platform.internal
    ana, bruno = await a.user("Ana"), await a.user("Bruno")
    own = await a.group(ana, bruno)
    # An internal call may put A's user in a conversation that is not A's.
    elsewhere = await internal.group(ana)
    joined_later = await internal.group(bruno)

    streams = {"client": a.stream_user(ana), "internal": internal.stream_user(ana)}
    for call in streams.values():
        await asyncio.wait_for(call.initial_metadata(), 10)
    await internal.conversations.AddMember(
        conv_rr.AddMemberRequest(request_id=rid(), conversation_id=joined_later, member=conv_pb.Member(user_id=ana))
    )
    for conversation_id in (elsewhere, joined_later, own):
        await platform.post(conversation_id, conversation_id)

    async def texts(call, count: int) -> set[str]:
        async with asyncio.timeout(10):
            return {(await call.read()).event.message_created.content.text for _ in range(count)}

    assert await texts(streams["internal"], 3) == {elsewhere, joined_later, own}
    assert await texts(streams["client"], 1) == {own}
    with pytest.raises(TimeoutError):  # and nothing else, however long the join took to be heard
        await asyncio.wait_for(streams["client"].read(), 1.5)
    for call in streams.values():
        call.cancel()


async def test_attachments_must_be_files_of_the_calling_client(platform):
    a, b = platform.a, platform.b
    ana, bia = await a.user("Ana"), await b.user("Bia")
    own, theirs = await a.group(ana), await b.group(bia)

    async def clean_file(caller, owner_user_id: str) -> str:
        request = files_rr.CreateUploadRequest(
            request_id=rid(), filename="a.txt", content_type="text/plain", size_bytes=3, sha256="0" * 64,
            owner_user_id=owner_user_id,
        )
        file_id = (await caller.files.CreateUpload(request)).file_id
        await execute(platform.dsn, "UPDATE files SET state = %s WHERE file_id = %s", (files_pb.FILE_STATE_CLEAN, file_id))
        return file_id

    anas, bias = await clean_file(a, ana), await clean_file(b, bia)
    missing = rid()
    unknown = await not_found(b.send(theirs, bia, file_ids=[missing]))
    assert same_answer(await not_found(b.send(theirs, bia, file_ids=[anas])), unknown, anas, missing)
    # Even a file claiming B's user as its owner is not B's if another client made it.
    forged = await clean_file(a, bia)
    assert forged in await not_found(b.send(theirs, bia, file_ids=[forged]))
    assert (await a.send(own, ana, file_ids=[anas])).message_id
    assert (await b.send(theirs, bia, file_ids=[bias])).message_id


async def test_dead_letters_are_listed_and_replayed_per_client(platform, monkeypatch):
    # Small scans, so the listing crosses several of them and a page may end on the scan limit.
    monkeypatch.setattr(messaging, "DEAD_LETTER_SCAN_BATCH", 2)
    monkeypatch.setattr(messaging, "DEAD_LETTER_SCAN_LIMIT", 3)
    a, b, internal = platform.a, platform.b, platform.internal
    own, theirs = await a.group(await a.user("Ana")), await b.group(await b.user("Bia"))
    mine, others = [], []
    for n in range(9):
        if n % 3 == 0:
            mine.append(await platform.dead_letter(own))
        else:
            others.append(await platform.dead_letter(theirs))
    newest_first = lambda ids: list(reversed(ids))  # noqa: E731
    for page_size in (1, 2, 5):
        assert await a.dead_letter_ids(page_size=page_size) == newest_first(mine)
        assert await b.dead_letter_ids(page_size=page_size) == newest_first(others)
    assert await a.dead_letter_ids(conversation_id=own) == newest_first(mine)
    assert await a.dead_letter_ids(conversation_id=theirs) == []
    assert set(await internal.dead_letter_ids()) == {*mine, *others}

    missing = rid()
    replay = lambda caller, dead_letter_id: caller.messages.ReplayDeadLetter(  # noqa: E731
        msg_rr.ReplayDeadLetterRequest(request_id=rid(), dead_letter_id=dead_letter_id)
    )
    unknown = await not_found(b.messages.ReplayDeadLetter(msg_rr.ReplayDeadLetterRequest(request_id=rid(), dead_letter_id=missing)))
    assert same_answer(await not_found(replay(b, mine[0])), unknown, mine[0], missing)
    assert (await replay(a, mine[0])).dead_letter.state == msg_pb.DeadLetterState.DEAD_LETTER_STATE_REPLAYED


# Webhooks --------------------------------------------------------------------------------------


async def test_webhooks_follow_only_the_callers_data_and_are_seen_by_their_client_only(platform):
    a, b, internal = platform.a, platform.b, platform.internal
    ana = await a.user("Ana")
    own = await a.group(ana)
    bia = await b.user("Bia")
    theirs = await b.group(bia)
    # A webhook scopes only the caller's conversations or users.
    assert own in await not_found(b.create_webhook([theirs, own]))
    assert ana in await not_found(b.create_webhook(user_id=ana))
    hooks_of_a = [(await a.create_webhook([own])).webhook.webhook_id, (await a.create_webhook(user_id=ana)).webhook.webhook_id]
    hook_of_b = (await b.create_webhook([theirs])).webhook.webhook_id
    internal_hook = (await internal.create_webhook([own, theirs])).webhook.webhook_id

    assert await a.webhook_ids() == list(reversed(hooks_of_a))
    assert await b.webhook_ids() == [hook_of_b]
    assert set(await internal.webhook_ids()) == {*hooks_of_a, hook_of_b, internal_hook}
    for hook in (*hooks_of_a, internal_hook):
        for call in (
            b.webhooks.GetWebhook(hooks_rr.GetWebhookRequest(webhook_id=hook)),
            b.webhooks.ListWebhookDeliveries(hooks_rr.ListWebhookDeliveriesRequest(webhook_id=hook)),
            b.webhooks.DeleteWebhook(hooks_rr.DeleteWebhookRequest(request_id=rid(), webhook_id=hook)),
        ):
            await not_found(call)
    assert (await a.webhooks.GetWebhook(hooks_rr.GetWebhookRequest(webhook_id=hooks_of_a[0]))).webhook.webhook_id == hooks_of_a[0]
    await internal.webhooks.GetWebhook(hooks_rr.GetWebhookRequest(webhook_id=hook_of_b))
    await internal.webhooks.DeleteWebhook(hooks_rr.DeleteWebhookRequest(request_id=rid(), webhook_id=internal_hook))
    assert await query(platform.dsn, "SELECT client_id, count(*) FROM webhooks GROUP BY 1 ORDER BY 1") == [(A, 2), (B, 1)]


# Inbound ---------------------------------------------------------------------------------------


def inbound(sender: str, text: str, chat: str = "") -> event_pb2.InboundMessageReceived:
    received = event_pb2.InboundMessageReceived(
        channel=WHATSAPP, account_id="phone-1", external_sender_id=sender, external_sender_display_name="Rita",
        external_message_id=rid(), external_chat_id=chat or sender, chat_type=DIRECT,
        content=msg_pb.MessageContent(text=text),
    )
    received.receive_time.GetCurrentTime()
    return received


async def test_inbound_messages_make_users_and_conversations_of_the_client_owning_the_accounts(platform):
    a, b, internal = platform.a, platform.b, platform.internal
    producer = await kafka.open_producer(load_settings(kafka_bootstrap=platform.kafka_bootstrap))
    users = users_grpc.UserServiceStub(platform.channels["users"])
    conversations = conv_grpc.ConversationServiceStub(platform.channels["conversations"])
    try:
        for_a = InboundIngest(producer, users, conversations, None, owner_client_id=A)  # type: ignore[arg-type]
        unowned = InboundIngest(producer, users, conversations, None, owner_client_id="")  # type: ignore[arg-type]
        await for_a.ingest(inbound("5511", "olá"))
        rita = await a.resolve("5511")
        [chat] = await a.conversation_ids(platform_binding=binding("5511"))
        assert [m.user_id for m in (await a.get_conversation(chat)).members] == [rita]
        await not_found(b.get_user(rita))
        await not_found(b.get_conversation(chat))
        # The next message of the same sender resolves among A's users to the same user and chat.
        await for_a.ingest(inbound("5511", "de novo"))
        assert await a.resolve("5511") == rita
        assert await a.conversation_ids(platform_binding=binding("5511")) == [chat]
        # Without an owner, as before owners existed: the same number is an unowned user of its
        # own. (Another chat: an internal lookup by binding would see A's mirror too.)
        await unowned.ingest(inbound("5511", "oi", chat="another-chat"))
        nobodys = await internal.resolve("5511")
        assert nobodys != rita
        [nobodys_chat] = await internal.conversation_ids(platform_binding=binding("another-chat"))
        await not_found(a.get_user(nobodys))
        await not_found(a.get_conversation(nobodys_chat))
        assert await a.conversation_ids() == [chat]
    finally:
        await producer.stop()
