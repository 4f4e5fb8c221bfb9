"""Inbound platform messages (as a connector publishes them) become conversation
messages: sender resolved or created once, chat bound to one conversation,
stored once however often the platform repeats it, in platform order."""

import asyncio
import uuid

import pytest
from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.conversations.v1 import request_response_pb2 as conversation_requests
from chat4all.events.v1 import event_pb2
from chat4all.messaging.v1 import message_pb2
from chat4all.messaging.v1 import request_response_pb2 as messaging_requests
from chat4all.users.v1 import request_response_pb2 as user_requests

from services.messaging import topics
from services.messaging.ingest import CLIENT_HEADER
from services.runtime import kafka
from services.runtime.config import load_settings
from tests.e2e.test_internal_delivery import send_request, wait_for_message

TELEGRAM = channel_pb2.Channel.CHANNEL_TELEGRAM
BOT = "7000001"


@pytest.fixture
async def producer(kafka_bootstrap):
    producer = await kafka.open_producer(load_settings(kafka_bootstrap=kafka_bootstrap))
    yield producer
    await producer.stop()


def inbound(chat_id: str, sender_id: str, message_id: int, text: str, name: str = "Zé") -> event_pb2.Event:
    event = event_pb2.Event(event_id=str(uuid.uuid4()))
    event.occur_time.GetCurrentTime()
    received = event.inbound_message_received
    received.channel = TELEGRAM
    received.account_id = BOT
    received.external_sender_id = sender_id
    received.external_sender_display_name = name
    received.external_message_id = str(message_id)
    received.external_chat_id = chat_id
    received.content.text = text
    received.receive_time.GetCurrentTime()
    return event


async def publish(producer, event):
    received = event.inbound_message_received
    await kafka.publish(producer, topics.INBOUND, f"{received.channel}:{received.account_id}:{received.external_chat_id}", event)


async def bound_conversation(api, chat_id: str, timeout: float = 20):
    binding = conversation_pb2.PlatformBinding(channel=TELEGRAM, account_id=BOT, external_group_id=chat_id)
    async with asyncio.timeout(timeout):
        while True:
            found = await api.conversations.ListConversations(conversation_requests.ListConversationsRequest(platform_binding=binding))
            if found.conversations:
                return found.conversations[0]
            await asyncio.sleep(0.1)


async def history(api, conversation_id: str, count: int, timeout: float = 20):
    async with asyncio.timeout(timeout):
        while True:
            listed = await api.messages.ListMessages(messaging_requests.ListMessagesRequest(conversation_id=conversation_id))
            if len(listed.messages) >= count:
                return list(reversed(listed.messages))
            await asyncio.sleep(0.1)


async def test_first_contact_creates_one_user_and_one_bound_conversation_and_stores_in_order(api, producer):
    chat = str(-uuid.uuid4().int % 10**12)
    senders = [str(uuid.uuid4().int % 10**9) for _ in range(3)]
    events = [inbound(chat, senders[i % 3], 100 + i, f"t{i}", name=f"Person {i % 3}") for i in range(9)]
    for event in events:
        await publish(producer, event)
    await publish(producer, events[4])  # the platform redelivers one

    conversation = await bound_conversation(api, chat)
    messages = await history(api, conversation.conversation_id, 9)
    await asyncio.sleep(1)  # a duplicate would have been stored by now
    messages = await history(api, conversation.conversation_id, 9)
    assert [m.content.text for m in messages] == [f"t{i}" for i in range(9)]
    assert [m.origin.inbound.external_message_id for m in messages] == [str(100 + i) for i in range(9)]

    user_ids = set()
    for sender in senders:
        user = (await api.users.ResolveIdentity(user_requests.ResolveIdentityRequest(channel=TELEGRAM, external_id=sender))).user
        user_ids.add(user.user_id)
    assert len(user_ids) == 3
    conversation = (await api.conversations.GetConversation(
        conversation_requests.GetConversationRequest(conversation_id=conversation.conversation_id)
    )).conversation
    assert {m.user_id for m in conversation.members} == user_ids
    assert {m.sender_user_id for m in messages} == user_ids


async def test_internal_member_of_a_bound_conversation_receives_inbound_messages(api, producer):
    chat, sender = str(uuid.uuid4().int % 10**9), str(uuid.uuid4().int % 10**9)
    await publish(producer, inbound(chat, sender, 1, "first"))
    conversation = await bound_conversation(api, chat)
    agent = await api.user("Agent")
    await api.conversations.AddMember(conversation_requests.AddMemberRequest(
        request_id=str(uuid.uuid4()), conversation_id=conversation.conversation_id,
        member=conversation_pb2.Member(user_id=agent),
    ))
    await publish(producer, inbound(chat, sender, 2, "second"))
    messages = await history(api, conversation.conversation_id, 2)
    [delivery] = messages[-1].deliveries
    assert delivery.recipient.user_id == agent
    assert delivery.recipient.channel == channel_pb2.Channel.CHANNEL_INTERNAL
    # Not echoed back to the Telegram chat it came from.
    assert all(d.recipient.channel != TELEGRAM for m in messages for d in m.deliveries)


async def test_a_client_request_republished_under_a_new_message_id_is_stored_once(api, producer):
    # What happens when SendMessage's acknowledgement is lost after the broker took the record
    # and the client's retry is accepted again under a new id: the router keeps the first.
    alice, bob = await api.user("Alice"), await api.user("Bob")
    conversation = await api.conversation(alice, bob)
    request_id = str(uuid.uuid4())
    ids = []
    for _ in range(2):
        event = event_pb2.Event(event_id=str(uuid.uuid4()), conversation_id=conversation)
        event.occur_time.GetCurrentTime()
        message = event.message_accepted.message
        message.message_id = str(uuid.uuid4())
        message.conversation_id = conversation
        message.sender_user_id = alice
        message.content.CopyFrom(message_pb2.MessageContent(text="sent twice"))
        message.origin.internal.request_id = request_id
        message.create_time.GetCurrentTime()
        await kafka.publish(producer, topics.MESSAGES, conversation, event, {CLIENT_HEADER: "client-a"})
        ids.append(message.message_id)
    after = await api.messages.SendMessage(send_request(conversation, alice, "and then this"))
    await wait_for_message(api, after.message_id, lambda m: bool(m.deliveries))  # the router went on

    listed = await api.messages.ListMessages(messaging_requests.ListMessagesRequest(conversation_id=conversation))
    assert [m.content.text for m in listed.messages] == ["and then this", "sent twice"]
    assert listed.messages[1].message_id == ids[0]


async def test_ten_concurrent_first_messages_from_one_unknown_sender_create_one_user(api, producer):
    # Ten chats (ten conversation lanes, handled concurrently) where the same new person writes
    # at once: every lane resolves the sender, finds nobody, and creates them.
    sender = str(uuid.uuid4().int % 10**9)
    chats = [str(-uuid.uuid4().int % 10**12) for _ in range(10)]
    await asyncio.gather(*(publish(producer, inbound(chat, sender, 1, f"hello {i}", name="Nova")) for i, chat in enumerate(chats)))
    conversations = await asyncio.gather(*(bound_conversation(api, chat) for chat in chats))
    senders = set()
    for conversation in conversations:
        [message] = await history(api, conversation.conversation_id, 1)
        senders.add(message.sender_user_id)
        assert [m.user_id for m in conversation.members] == [message.sender_user_id]
    resolved = (await api.users.ResolveIdentity(user_requests.ResolveIdentityRequest(channel=TELEGRAM, external_id=sender))).user
    assert senders == {resolved.user_id}
    assert resolved.display_name == "Nova"
