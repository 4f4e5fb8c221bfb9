"""StreamUserEvents against real servers and PostgreSQL: the users, conversations and
messaging services in-process on the test's own database and Redis, events
appended to the conversation logs with the store functions the router uses.

A user's stream merges all of the user's conversations, resumes from any cursor
it handed out with nothing missed and nothing twice, follows joins and
removals, keeps its cursors small, and refuses cursors that are not its own."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict

import grpc
import psycopg
import pytest
from chat4all.conversations.v1 import message_pb2 as conv_pb, request_response_pb2 as conv_rr
from chat4all.conversations.v1 import service_pb2_grpc as conv_grpc
from chat4all.messaging.v1 import message_pb2 as msg_pb, request_response_pb2 as msg_rr
from chat4all.messaging.v1 import service_pb2_grpc as msg_grpc
from chat4all.users.v1 import request_response_pb2 as users_rr, service_pb2_grpc as users_grpc

from services.messaging import servicer as messaging, store
from services.messaging.settings import MessagingSettings
from services.messaging.user_cursor import MAX_CURSOR_CHARS, MAX_CURSOR_ENTRIES
from tests.services.servers import conversations_service, execute, query, serving, users_service

S = msg_pb.DeliveryStatus
GROUP, DIRECT = conv_pb.CONVERSATION_TYPE_GROUP, conv_pb.CONVERSATION_TYPE_DIRECT
OWNER = conv_pb.MEMBER_ROLE_OWNER


def rid() -> str:
    return str(uuid.uuid4())


class Platform:
    """The three services as a client sees them, plus the router's side of the event log."""

    def __init__(self, dsn: str, users_channel, conversations_channel, messaging_channel) -> None:
        self.dsn = dsn
        self.users = users_grpc.UserServiceStub(users_channel)
        self.conversations = conv_grpc.ConversationServiceStub(conversations_channel)
        self.messages = msg_grpc.MessageServiceStub(messaging_channel)

    async def user(self, name: str = "someone") -> str:
        return (await self.users.CreateUser(users_rr.CreateUserRequest(request_id=rid(), display_name=name))).user.user_id

    async def group(self, owner: str, *members: str) -> str:
        request = conv_rr.CreateConversationRequest(
            request_id=rid(),
            type=GROUP,
            members=[conv_pb.Member(user_id=owner, role=OWNER), *(conv_pb.Member(user_id=m) for m in members)],
        )
        return (await self.conversations.CreateConversation(request)).conversation.conversation_id

    async def direct(self, a: str, b: str) -> str:
        request = conv_rr.CreateConversationRequest(
            request_id=rid(), type=DIRECT, members=[conv_pb.Member(user_id=a), conv_pb.Member(user_id=b)]
        )
        return (await self.conversations.CreateConversation(request)).conversation.conversation_id

    async def add(self, conversation_id: str, user_id: str) -> None:
        await self.conversations.AddMember(
            conv_rr.AddMemberRequest(request_id=rid(), conversation_id=conversation_id, member=conv_pb.Member(user_id=user_id))
        )

    async def remove(self, conversation_id: str, user_id: str) -> None:
        await self.conversations.RemoveMember(
            conv_rr.RemoveMemberRequest(request_id=rid(), conversation_id=conversation_id, user_id=user_id)
        )

    # What the router writes: a message with its message_created event, and status changes.

    async def post(self, conversation_id: str, text: str) -> tuple:
        message = msg_pb.Message(
            message_id=rid(), conversation_id=conversation_id, content=msg_pb.MessageContent(text=text)
        )
        message.create_time.GetCurrentTime()
        event = msg_pb.ConversationEvent(conversation_id=conversation_id, message_created=message)
        event.occur_time.CopyFrom(message.create_time)
        async with await psycopg.AsyncConnection.connect(self.dsn) as conn, conn.transaction():
            seq = await store.append_event(conn, event)
            assert await store.insert_message(conn, message, seq, None, None)
        return ("created", conversation_id, text)

    async def status(self, conversation_id: str, text: str, status: int) -> tuple:
        update = msg_pb.DeliveryUpdate(message_id=text, current_status=status)
        update.change.status = status
        event = msg_pb.ConversationEvent(conversation_id=conversation_id, delivery_status_changed=update)
        event.occur_time.GetCurrentTime()
        async with await psycopg.AsyncConnection.connect(self.dsn) as conn, conn.transaction():
            await store.append_events(conn, [event])
        return ("status", conversation_id, text, status)

    def stream(self, user_id: str, after_cursor: str = "") -> UserStream:
        return UserStream(self.messages, user_id, after_cursor)


def describe(event: msg_pb.ConversationEvent) -> tuple:
    """What a test wrote, as it comes back (the status helper keeps the text in message_id)."""
    if event.HasField("message_created"):
        return ("created", event.conversation_id, event.message_created.content.text)
    update = event.delivery_status_changed
    return ("status", event.conversation_id, update.message_id, update.change.status)


def by_conversation(items: list[tuple]) -> dict[str, list[tuple]]:
    grouped: dict[str, list[tuple]] = defaultdict(list)
    for item in items:
        grouped[item[1]].append(item)
    return dict(grouped)


class UserStream:
    """A StreamUserEvents call read in the background, so a test can wait for what it expects."""

    def __init__(self, stub: msg_grpc.MessageServiceStub, user_id: str, after_cursor: str) -> None:
        self.call = stub.StreamUserEvents(msg_rr.StreamUserEventsRequest(user_id=user_id, after_cursor=after_cursor))
        self.received: asyncio.Queue[msg_pb.ConversationEvent] = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> UserStream:
        # Headers come once the stream is positioned: everything written from now on arrives.
        await asyncio.wait_for(self.call.initial_metadata(), 10)
        self.task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        self.call.cancel()
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await self.task

    async def _read(self) -> None:
        async for response in self.call:
            await self.received.put(response.event)

    async def take(self, count: int, timeout: float = 10) -> list[msg_pb.ConversationEvent]:
        async with asyncio.timeout(timeout):
            return [await self.received.get() for _ in range(count)]

    async def nothing_more(self, seconds: float = 0.5) -> None:
        await asyncio.sleep(seconds)
        assert self.received.empty(), [describe(e) for e in self.received._queue]  # type: ignore[attr-defined]


async def stream_error(messages: msg_grpc.MessageServiceStub, user_id: str, after_cursor: str = "") -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in messages.StreamUserEvents(msg_rr.StreamUserEventsRequest(user_id=user_id, after_cursor=after_cursor), timeout=10):
            pass
    return error.value


@pytest.fixture
async def platform(postgres_dsn, kafka_bootstrap):
    async with users_service(postgres_dsn) as (users_runtime, users_channel):
        users_target = f"127.0.0.1:{users_runtime.port}"
        async with conversations_service(postgres_dsn, users_target) as (conversations_runtime, conversations_channel):
            async with serving(
                messaging,
                MessagingSettings,
                postgres_dsn,
                kafka_bootstrap=kafka_bootstrap,
                users_target=users_target,
                conversations_target=f"127.0.0.1:{conversations_runtime.port}",
            ) as (_, messaging_channel):
                yield Platform(postgres_dsn, users_channel, conversations_channel, messaging_channel)


# Merge and resume -------------------------------------------------------------------------------


async def test_events_of_every_conversation_arrive_in_order_and_resume_exactly(platform):
    alice, bob, carol = await platform.user("Alice"), await platform.user("Bob"), await platform.user("Carol")
    direct, group = await platform.direct(alice, bob), await platform.group(carol, alice)
    elsewhere = await platform.direct(bob, carol)  # not Alice's
    await platform.post(direct, "before the stream opened")

    async with platform.stream(alice) as stream:
        written = [
            await platform.post(direct, "d1"),
            await platform.post(group, "g1"),
            await platform.post(elsewhere, "not for Alice"),
            await platform.status(direct, "d1", S.DELIVERY_STATUS_SENT),
            await platform.post(group, "g2"),
            await platform.status(group, "g1", S.DELIVERY_STATUS_READ),
            await platform.post(direct, "d2"),
        ]
        written.remove(("created", elsewhere, "not for Alice"))
        first = await stream.take(len(written))
        await stream.nothing_more()
    got = [describe(e) for e in first]
    # Within each conversation exactly what was written, in order; nothing from elsewhere.
    assert by_conversation(got) == by_conversation(written)
    assert len({e.cursor for e in first}) == len(first)

    # Disconnected after the third event; more happens meanwhile.
    written += [await platform.post(group, "g3"), await platform.post(direct, "d3")]
    async with platform.stream(alice, first[2].cursor) as resumed:
        rest = await resumed.take(len(written) - 3)
        await resumed.nothing_more()
    again = got[:3] + [describe(e) for e in rest]
    assert sorted(again) == sorted(written)  # nothing missed, nothing twice
    assert by_conversation(again) == by_conversation(written)  # and each conversation in order

    # Every cursor resumes right after its own event: from the last one, only what is new.
    async with platform.stream(alice, rest[-1].cursor) as latest:
        await latest.nothing_more(0.3)
        news = await platform.post(group, "g4")
        assert [describe(e) for e in await latest.take(1)] == [news]


async def test_the_start_cursor_in_the_headers_resumes_from_where_the_stream_opened(platform):
    alice, bob = await platform.user("Alice"), await platform.user("Bob")
    direct = await platform.direct(alice, bob)
    # More conversations than a cursor holds: the start cursor needs a checkpoint at once.
    groups = [await platform.group(bob, alice) for _ in range(MAX_CURSOR_ENTRIES + 1)]
    await platform.post(direct, "before the stream opened")
    await platform.post(groups[0], "before too")

    call = platform.messages.StreamUserEvents(msg_rr.StreamUserEventsRequest(user_id=alice))
    headers = dict(await asyncio.wait_for(call.initial_metadata(), 10))
    call.cancel()  # no event has been read: the header alone says where the stream started
    start = headers["x-chat4all-start-cursor"]
    assert 0 < len(start) <= MAX_CURSOR_CHARS

    # While nobody reads: news in old conversations and in one joined after the start.
    written = [await platform.post(direct, "after"), await platform.post(groups[-1], "in a group")]
    joined = await platform.group(bob, alice)
    written.append(await platform.post(joined, "joined after the start"))
    async with platform.stream(alice, start) as resumed:
        got = await resumed.take(len(written))
        await resumed.nothing_more()
    assert sorted(describe(e) for e in got) == sorted(written)

    # Another user's start cursor is not this stream's.
    error = await stream_error(platform.messages, bob, start)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_cursors_stay_small_for_a_user_in_many_conversations(platform, postgres_dsn):
    alice, bob = await platform.user("Alice"), await platform.user("Bob")
    groups = [await platform.group(bob, alice) for _ in range(MAX_CURSOR_ENTRIES + 8)]
    async with platform.stream(alice) as stream:
        written = [await platform.post(g, f"m{n}") for n, g in enumerate(groups)]
        first = await stream.take(len(written))
    assert sorted(describe(e) for e in first) == sorted(written)
    # More conversations than a cursor holds: the vector went to a checkpoint.
    assert all(len(e.cursor) <= MAX_CURSOR_CHARS for e in first)
    assert (await query(postgres_dsn, "SELECT count(*) FROM user_stream_checkpoints WHERE user_id = %s", (alice,)))[0][0] >= 1

    more = [await platform.post(g, f"again {n}") for n, g in enumerate(groups[:5])]
    async with platform.stream(alice, first[9].cursor) as resumed:
        rest = await resumed.take(len(written) - 10 + len(more))
        await resumed.nothing_more()
    assert sorted([describe(e) for e in first[:10]] + [describe(e) for e in rest]) == sorted(written + more)

    # The checkpoint outlived its retention: the cursor is older than what is kept.
    await execute(postgres_dsn, "DELETE FROM user_stream_checkpoints")
    error = await stream_error(platform.messages, alice, rest[-1].cursor)
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "after_cursor" in error.details()


# Membership ----------------------------------------------------------------------------------


async def test_a_conversation_joined_later_streams_from_the_join_and_a_left_one_stops(platform):
    alice, bob, carol = await platform.user("Alice"), await platform.user("Bob"), await platform.user("Carol")
    home = await platform.direct(alice, bob)
    club = await platform.group(bob, carol)
    async with platform.stream(alice) as stream:
        await platform.post(club, "before Alice joined")
        await platform.add(club, alice)
        joined = await platform.post(club, "after Alice joined")
        assert [describe(e) for e in await stream.take(1)] == [joined]

        # Created with Alice in it (not announced): its first event brings it in.
        fresh = await platform.group(carol, alice)
        created = await platform.post(fresh, "a new group")
        assert [describe(e) for e in await stream.take(1)] == [created]

        await platform.remove(club, alice)
        await asyncio.sleep(0.5)  # the announcement reaches the stream
        await platform.post(club, "after Alice left")
        marker = await platform.post(home, "marker")
        assert [describe(e) for e in await stream.take(1)] == [marker]
        await stream.nothing_more()

        # Back again: from the new join on, not what was said while she was out.
        await platform.add(club, alice)
        back = await platform.post(club, "Alice is back")
        assert [describe(e) for e in await stream.take(1)] == [back]
        await stream.nothing_more()


async def test_a_resume_follows_what_changed_while_away(platform):
    alice, bob = await platform.user("Alice"), await platform.user("Bob")
    home, left, later = await platform.direct(alice, bob), await platform.group(bob, alice), await platform.group(bob)
    async with platform.stream(alice) as stream:
        await platform.post(home, "hello")
        [last] = await stream.take(1)

    await platform.remove(left, alice)
    await platform.post(left, "after Alice left")
    await platform.post(later, "before Alice joined")
    await platform.add(later, alice)
    expected = [await platform.post(later, "after Alice joined"), await platform.post(home, "still here")]
    async with platform.stream(alice, last.cursor) as resumed:
        assert sorted(describe(e) for e in await resumed.take(2)) == sorted(expected)
        await resumed.nothing_more()


# Errors ----------------------------------------------------------------------------------------


async def test_cursors_of_other_streams_and_malformed_requests_are_refused(platform):
    alice, bob = await platform.user("Alice"), await platform.user("Bob")
    conversation = await platform.direct(alice, bob)
    async with platform.stream(alice) as stream:
        await platform.post(conversation, "hi")
        [event] = await stream.take(1)

    error = await stream_error(platform.messages, bob, event.cursor)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "another user" in error.details()

    listed = await platform.messages.ListMessages(msg_rr.ListMessagesRequest(conversation_id=conversation))
    for malformed in ("not a cursor", "!!!", event.cursor[:-7], event.cursor + "AAAA", listed.events_cursor):
        error = await stream_error(platform.messages, alice, malformed)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, malformed
        assert "after_cursor is malformed" in error.details(), malformed

    error = await stream_error(platform.messages, str(uuid.uuid4()))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await stream_error(platform.messages, "not-a-uuid")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "user_id" in error.details()
