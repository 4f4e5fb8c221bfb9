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


async def telegram_conversations(users: user_grpc.UserServiceStub, conversations: conversation_grpc.ConversationServiceStub, count: int) -> list[dict]:
    """`count` direct conversations, each between an internal agent and a Telegram user in a
    private chat of their own (chat id = the user's Telegram id)."""

    async def one(i: int) -> dict:
        chat_id = str(next(_chat_ids))
        agent = await users.CreateUser(user_requests.CreateUserRequest(request_id=str(uuid.uuid4()), display_name=f"agent {i}"))
        customer = await users.CreateUser(user_requests.CreateUserRequest(
            request_id=str(uuid.uuid4()), display_name=f"customer {i}",
            identities=[user_pb2.ExternalIdentity(channel=channel_pb2.Channel.CHANNEL_TELEGRAM, external_id=chat_id)],
        ))
        created = await conversations.CreateConversation(conversation_requests.CreateConversationRequest(
            request_id=str(uuid.uuid4()), type=conversation_pb2.ConversationType.CONVERSATION_TYPE_DIRECT,
            members=[conversation_pb2.Member(user_id=agent.user.user_id), conversation_pb2.Member(user_id=customer.user.user_id)],
        ))
        return {"conversation_id": created.conversation.conversation_id, "sender_user_id": agent.user.user_id, "chat_id": chat_id}

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def send_until_accepted(messages: messaging_grpc.MessageServiceStub, conversation: dict, text: str, deadline: float = 120) -> str:
    """What a careful client does: retry UNAVAILABLE with the same request_id until accepted."""
    request = messaging_requests.SendMessageRequest(
        request_id=str(uuid.uuid4()), conversation_id=conversation["conversation_id"],
        sender_user_id=conversation["sender_user_id"], content=message_pb2.MessageContent(text=text),
    )
    give_up = time.monotonic() + deadline
    while True:
        try:
            return (await messages.SendMessage(request, timeout=15)).message_id
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or time.monotonic() > give_up:
                raise
            await asyncio.sleep(0.2)


async def emulator_sends(session: aiohttp.ClientSession, base: str, tag: str) -> list[dict]:
    """Every sendMessage the emulator accepted whose text starts with `tag`, in arrival order."""
    async with session.get(f"{base}/_emulator/messages", params={"limit": "1000000"}) as response:
        response.raise_for_status()
        entries = (await response.json())["messages"]
    return [e for e in entries if e["message"].get("text", "").startswith(tag)]
