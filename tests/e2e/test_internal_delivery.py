"""Send -> Kafka -> router -> store -> stream, between internal users, on the real processes."""

import asyncio
import uuid

import grpc
import pytest
from chat4all.messaging.v1 import message_pb2
from chat4all.messaging.v1 import request_response_pb2 as messaging_requests

S = message_pb2.DeliveryStatus


def send_request(conversation_id, sender, text, request_id=None):
    return messaging_requests.SendMessageRequest(
        request_id=request_id or str(uuid.uuid4()),
        conversation_id=conversation_id,
        sender_user_id=sender,
        content=message_pb2.MessageContent(text=text),
    )


async def wait_for_message(api, message_id, predicate, timeout=20):
    async with asyncio.timeout(timeout):
        while True:
            try:
                message = (await api.messages.GetMessage(messaging_requests.GetMessageRequest(message_id=message_id))).message
                if predicate(message):
                    return message
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            await asyncio.sleep(0.05)


async def test_message_reaches_the_other_member_with_its_status_history(api):
    alice, bob = await api.user("Alice"), await api.user("Bob")
    conversation = await api.conversation(alice, bob)
    reply = await api.messages.SendMessage(send_request(conversation, alice, "hi Bob"))
    assert uuid.UUID(reply.message_id).version == 4
    assert reply.status == S.DELIVERY_STATUS_ACCEPTED

    message = await wait_for_message(api, reply.message_id, lambda m: m.deliveries and m.deliveries[0].status == S.DELIVERY_STATUS_SENT)
    assert message.content.text == "hi Bob"
    assert message.sender_user_id == alice
    [delivery] = message.deliveries
    assert delivery.recipient.user_id == bob
    assert [change.status for change in delivery.history] == [S.DELIVERY_STATUS_ACCEPTED, S.DELIVERY_STATUS_SENT]


async def test_same_request_id_returns_the_same_answer_and_stores_once(api):
    alice, bob = await api.user("Alice"), await api.user("Bob")
    conversation = await api.conversation(alice, bob)
    request = send_request(conversation, alice, "only once")
    replies = await asyncio.gather(*(api.messages.SendMessage(request) for _ in range(10)))
    assert len({r.message_id for r in replies}) == 1
    assert len({r.accept_time.ToNanoseconds() for r in replies}) == 1
    again = await api.messages.SendMessage(request)
    assert again == replies[0]

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await api.messages.SendMessage(send_request(conversation, alice, "something else", request.request_id))
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS

    await wait_for_message(api, replies[0].message_id, lambda m: bool(m.deliveries))
    listed = await api.messages.ListMessages(messaging_requests.ListMessagesRequest(conversation_id=conversation))
    assert [m.content.text for m in listed.messages] == ["only once"]


@pytest.mark.parametrize(
    ("mutate", "code", "words"),
    [
        (lambda r: setattr(r, "request_id", "not-a-uuid"), grpc.StatusCode.INVALID_ARGUMENT, "request_id"),
        (lambda r: setattr(r, "conversation_id", str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND, "conversation"),
        (lambda r: setattr(r, "sender_user_id", str(uuid.uuid4())), grpc.StatusCode.PERMISSION_DENIED, "not a member"),
        (lambda r: r.content.ClearField("text"), grpc.StatusCode.INVALID_ARGUMENT, "content"),
        (lambda r: setattr(r.content, "text", "x" * 4097), grpc.StatusCode.INVALID_ARGUMENT, "4096"),
    ],
)
async def test_bad_sends_get_a_clear_status(api, mutate, code, words):
    alice, bob = await api.user("Alice"), await api.user("Bob")
    conversation = await api.conversation(alice, bob)
    request = send_request(conversation, alice, "hello")
    mutate(request)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await api.messages.SendMessage(request)
    assert error.value.code() == code
    assert words in error.value.details()


async def test_history_is_newest_first_and_the_stream_resumes_from_its_cursor(api):
    alice, bob = await api.user("Alice"), await api.user("Bob")
    conversation = await api.conversation(alice, bob)
    first = await api.messages.SendMessage(send_request(conversation, alice, "m0"))
    await wait_for_message(api, first.message_id, lambda m: m.deliveries and m.deliveries[0].status == S.DELIVERY_STATUS_SENT)
    page = await api.messages.ListMessages(messaging_requests.ListMessagesRequest(conversation_id=conversation))
    cursor = page.events_cursor

    sent = [first.message_id]
    for i in range(1, 6):
        sent.append((await api.messages.SendMessage(send_request(conversation, alice if i % 2 else bob, f"m{i}"))).message_id)

    async def collect(after, count):
        events = []
        call = api.messages.StreamConversationEvents(
            messaging_requests.StreamConversationEventsRequest(conversation_id=conversation, after_cursor=after)
        )
        async with asyncio.timeout(20):
            async for response in call:
                events.append(response.event)
                if len(events) == count:
                    call.cancel()
                    break
        return events

    # 5 messages, each created and then SENT: 10 events, in conversation order.
    events = await collect(cursor, 10)
    created = [e.message_created.message_id for e in events if e.HasField("message_created")]
    assert created == sent[1:]
    # Resume from the middle: exactly the rest, no gap, no repeat.
    rest = await collect(events[3].cursor, 6)
    assert [e.cursor for e in rest] == [e.cursor for e in events[4:]]

    texts, token = [], ""
    while True:
        listed = await api.messages.ListMessages(
            messaging_requests.ListMessagesRequest(conversation_id=conversation, page_size=2, page_token=token)
        )
        texts += [m.content.text for m in listed.messages]
        token = listed.next_page_token
        if not token:
            break
    assert texts == [f"m{i}" for i in reversed(range(6))]


async def test_a_removed_member_gets_nothing_from_the_next_message_on(api):
    from chat4all.conversations.v1 import message_pb2 as conversation_pb2
    from chat4all.conversations.v1 import request_response_pb2 as conversation_requests

    alice, bob, carol = await api.user("Alice"), await api.user("Bob"), await api.user("Carol")
    created = await api.conversations.CreateConversation(conversation_requests.CreateConversationRequest(
        request_id=str(uuid.uuid4()), type=conversation_pb2.ConversationType.CONVERSATION_TYPE_GROUP,
        members=[conversation_pb2.Member(user_id=u, role=conversation_pb2.MemberRole.MEMBER_ROLE_OWNER if u == alice else 0) for u in (alice, bob, carol)],
    ))
    conversation = created.conversation.conversation_id
    first = await api.messages.SendMessage(send_request(conversation, alice, "to both"))
    message = await wait_for_message(api, first.message_id, lambda m: len(m.deliveries) == 2)
    assert {d.recipient.user_id for d in message.deliveries} == {bob, carol}

    # Cached lookups must not outlive the change: the very next message skips Bob.
    await api.conversations.RemoveMember(conversation_requests.RemoveMemberRequest(
        request_id=str(uuid.uuid4()), conversation_id=conversation, user_id=bob))
    second = await api.messages.SendMessage(send_request(conversation, alice, "to Carol only"))
    message = await wait_for_message(api, second.message_id, lambda m: bool(m.deliveries))
    assert [d.recipient.user_id for d in message.deliveries] == [carol]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await api.messages.SendMessage(send_request(conversation, bob, "am I still here?"))
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
