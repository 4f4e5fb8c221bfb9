"""A user's event stream on the real processes: sends go through Kafka and the
router into the conversation logs, and StreamUserEvents merges the user's
conversations, resumes from a cursor, and picks up a conversation joined later."""

import asyncio
import contextlib
import uuid

import grpc
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.conversations.v1 import request_response_pb2 as conversation_requests
from chat4all.messaging.v1 import message_pb2
from chat4all.messaging.v1 import request_response_pb2 as messaging_requests

S = message_pb2.DeliveryStatus


def send_request(conversation_id, sender, text):
    return messaging_requests.SendMessageRequest(
        request_id=str(uuid.uuid4()),
        conversation_id=conversation_id,
        sender_user_id=sender,
        content=message_pb2.MessageContent(text=text),
    )


async def wait_until_sent(api, message_id, recipients):
    """The router stored the message and every recipient's SENT (its events are all in the log)."""
    async with asyncio.timeout(20):
        while True:
            try:
                message = (await api.messages.GetMessage(messaging_requests.GetMessageRequest(message_id=message_id))).message
                if len(message.deliveries) == recipients and all(d.status == S.DELIVERY_STATUS_SENT for d in message.deliveries):
                    return
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def user_stream(api, user_id, after_cursor=""):
    """The user's stream, positioned (headers received), read into a queue in the background."""
    call = api.messages.StreamUserEvents(messaging_requests.StreamUserEventsRequest(user_id=user_id, after_cursor=after_cursor))
    await asyncio.wait_for(call.initial_metadata(), 20)
    received: asyncio.Queue = asyncio.Queue()

    async def read():
        async for response in call:
            await received.put(response.event)

    task = asyncio.create_task(read())
    try:
        yield received
    finally:
        call.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await task


async def take(queue, count, timeout=20):
    async with asyncio.timeout(timeout):
        return [await queue.get() for _ in range(count)]


async def conversation_events(api, conversation_id, after, count):
    """The same conversation's events through its own stream, to compare with."""
    events = []
    call = api.messages.StreamConversationEvents(
        messaging_requests.StreamConversationEventsRequest(conversation_id=conversation_id, after_cursor=after)
    )
    async with asyncio.timeout(20):
        async for response in call:
            events.append(response.event)
            if len(events) == count:
                call.cancel()
                return events
    return events


def content(event):
    """An event without its cursor (the two streams number them differently)."""
    copy = message_pb2.ConversationEvent()
    copy.CopyFrom(event)
    copy.ClearField("cursor")
    return copy.SerializeToString()


def of(events, conversation_id):
    return [content(e) for e in events if e.conversation_id == conversation_id]


async def test_a_users_stream_merges_resumes_and_follows_a_join(api):
    alice, bob, carol = await api.user("Alice"), await api.user("Bob"), await api.user("Carol")
    direct, group = await api.conversation(alice, bob), await api.conversation(alice, bob, carol)
    starts = {
        c: (await api.messages.ListMessages(messaging_requests.ListMessagesRequest(conversation_id=c))).events_cursor
        for c in (direct, group)
    }

    # Each message: created, then SENT for every internal recipient.
    sends = [(direct, bob, "b1", 2), (group, carol, "c1", 3), (direct, alice, "a1", 2)]
    async with user_stream(api, alice) as stream:
        for conversation, sender, text, _ in sends:
            await api.messages.SendMessage(send_request(conversation, sender, text))
        first = await take(stream, sum(n for *_, n in sends))

    # Disconnected after three events; two more messages meanwhile.
    later = [(group, bob, "b2", 3), (direct, bob, "b3", 2)]
    for conversation, sender, text, _ in later:
        await api.messages.SendMessage(send_request(conversation, sender, text))
    total = sum(n for *_, n in sends + later)
    async with user_stream(api, alice, first[2].cursor) as resumed:
        rest = await take(resumed, total - 3)
        await asyncio.sleep(0.5)
        assert resumed.empty()

    merged = first[:3] + rest
    # Exactly each conversation's own stream, in its order: nothing missed, nothing twice.
    for conversation in (direct, group):
        own = await conversation_events(api, conversation, starts[conversation], len(of(merged, conversation)))
        assert of(merged, conversation) == [content(e) for e in own]

    # A group Alice joins later: what was said before stays out, what follows comes in.
    club = await api.conversation(bob, carol, await api.user("Dan"))
    async with user_stream(api, alice, rest[-1].cursor) as stream:
        before = await api.messages.SendMessage(send_request(club, bob, "before Alice"))
        # Routed and settled before the join: a message still in flight at the join may be
        # routed to the new member, and then shows on its stream too.
        await wait_until_sent(api, before.message_id, 2)
        await api.conversations.AddMember(conversation_requests.AddMemberRequest(
            request_id=str(uuid.uuid4()), conversation_id=club, member=conversation_pb2.Member(user_id=alice)))
        reply = await api.messages.SendMessage(send_request(club, carol, "welcome Alice"))
        [created] = await take(stream, 1)
        assert created.message_created.message_id == reply.message_id
        assert created.message_created.content.text == "welcome Alice"
