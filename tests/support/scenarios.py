"""Shared set-ups for end-to-end tests and the benchmark: real users and conversations
created through the public API."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

import aiohttp
import grpc
from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.conversations.v1 import request_response_pb2 as conversation_requests
from chat4all.conversations.v1 import service_pb2_grpc as conversation_grpc
from chat4all.messaging.v1 import message_pb2
from chat4all.messaging.v1 import request_response_pb2 as messaging_requests
from chat4all.messaging.v1 import service_pb2_grpc as messaging_grpc
from chat4all.users.v1 import message_pb2 as user_pb2
from chat4all.users.v1 import request_response_pb2 as user_requests
from chat4all.users.v1 import service_pb2_grpc as user_grpc

_chat_ids = itertools.count(int(time.time() * 1000) % 10**12)


async def platform_conversations(
    users: user_grpc.UserServiceStub,
    conversations: conversation_grpc.ConversationServiceStub,
    count: int,
    channel: int = channel_pb2.Channel.CHANNEL_TELEGRAM,
) -> list[dict]:
    """`count` direct conversations, each between an internal agent and a platform user of
    their own on `channel` ("chat_id": the user's id there, numeric: a Telegram private chat,
    a WhatsApp wa_id, an Instagram-scoped id)."""

    async def one(i: int) -> dict:
        chat_id = str(next(_chat_ids))
        agent = await users.CreateUser(user_requests.CreateUserRequest(request_id=str(uuid.uuid4()), display_name=f"agent {i}"))
        customer = await users.CreateUser(user_requests.CreateUserRequest(
            request_id=str(uuid.uuid4()), display_name=f"customer {i}",
            identities=[user_pb2.ExternalIdentity(channel=channel, external_id=chat_id)],
        ))
        created = await conversations.CreateConversation(conversation_requests.CreateConversationRequest(
            request_id=str(uuid.uuid4()), type=conversation_pb2.ConversationType.CONVERSATION_TYPE_DIRECT,
            members=[conversation_pb2.Member(user_id=agent.user.user_id), conversation_pb2.Member(user_id=customer.user.user_id)],
        ))
        return {"conversation_id": created.conversation.conversation_id, "sender_user_id": agent.user.user_id, "chat_id": chat_id}

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def send_until_accepted(
    messages: messaging_grpc.MessageServiceStub, conversation: dict, text: str, deadline: float = 120,
    content: message_pb2.MessageContent | None = None,
) -> str:
    """What a careful client does: retry UNAVAILABLE with the same request_id until accepted.
    Sends `text`, or `content` when given (a template...)."""
    request = messaging_requests.SendMessageRequest(
        request_id=str(uuid.uuid4()), conversation_id=conversation["conversation_id"],
        sender_user_id=conversation["sender_user_id"], content=content or message_pb2.MessageContent(text=text),
    )
    give_up = time.monotonic() + deadline
    while True:
        try:
            return (await messages.SendMessage(request, timeout=15)).message_id
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or time.monotonic() > give_up:
                raise
            await asyncio.sleep(0.2)


def is_settled(message: message_pb2.Message, final: frozenset[int]) -> bool:
    return bool(message.deliveries) and all(d.status in final for d in message.deliveries)


async def settled(
    messages: messaging_grpc.MessageServiceStub,
    message_ids: list[str],
    timeout: float = 120,
    final: frozenset[int] = frozenset({message_pb2.DELIVERY_STATUS_SENT, message_pb2.DELIVERY_STATUS_DEAD_LETTERED}),
) -> list[message_pb2.Message]:
    """The messages once every delivery of each has reached a status in `final` (a group
    message's recipients settle one by one)."""
    deadline = time.monotonic() + timeout
    while True:
        found: list[message_pb2.Message] = []
        try:
            replies = await asyncio.gather(
                *(messages.GetMessage(messaging_requests.GetMessageRequest(message_id=m)) for m in message_ids)
            )
            found = [reply.message for reply in replies]
            if all(is_settled(m, final) for m in found):
                return found
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:  # not stored yet
                raise
        unsettled = [m for m in found if not is_settled(m, final)]
        assert time.monotonic() < deadline, f"{len(unsettled) or 'some'} deliveries did not settle: {unsettled[:1]}"
        await asyncio.sleep(0.5)


async def emulator_sends(session: aiohttp.ClientSession, base: str, tag: str) -> list[dict]:
    """Every sendMessage the emulator accepted whose text starts with `tag`, in arrival order."""
    async with session.get(f"{base}/_emulator/messages", params={"limit": "1000000"}) as response:
        response.raise_for_status()
        entries = (await response.json())["messages"]
    return [e for e in entries if e["message"].get("text", "").startswith(tag)]
