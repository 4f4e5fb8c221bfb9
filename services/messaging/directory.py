"""Conversations and users as the messaging domain reads them on every message:
cached in-process and emptied when the conversation or user service announces a
change (see services/runtime/change_feed.py). A user's memberships, read when a
user stream opens or refreshes, are not cached: the stream keeps them itself."""

from __future__ import annotations

import grpc
import redis.asyncio as redis
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.conversations.v1 import request_response_pb2 as conversation_requests
from chat4all.conversations.v1 import service_pb2_grpc as conversation_grpc
from chat4all.users.v1 import message_pb2 as user_pb2
from chat4all.users.v1 import request_response_pb2 as user_requests
from chat4all.users.v1 import service_pb2_grpc as user_grpc

from services.runtime import change_feed
from services.runtime.errors import NotFound, Unavailable

# Conversations per ListConversations page when listing a user's memberships. Each comes with
# all of its members, so a page of large groups must stay well under gRPC's 4 MB message limit.
_MEMBERSHIP_PAGE = 100


def _unwrap(error: grpc.aio.AioRpcError, what: str) -> Exception:
    if error.code() == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"{what} does not exist")
    return Unavailable(f"looking up {what}: {error.code().name}")


class Directory:
    def __init__(
        self,
        client: redis.Redis,
        conversations: conversation_grpc.ConversationServiceStub,
        users: user_grpc.UserServiceStub | None = None,
    ) -> None:
        async def load_conversation(conversation_id: str) -> conversation_pb2.Conversation:
            request = conversation_requests.GetConversationRequest(conversation_id=conversation_id)
            try:
                return (await conversations.GetConversation(request, timeout=5)).conversation
            except grpc.aio.AioRpcError as error:
                raise _unwrap(error, f"conversation {conversation_id}") from None

        async def load_user(user_id: str) -> user_pb2.User:
            try:
                return (await users.GetUser(user_requests.GetUserRequest(user_id=user_id), timeout=5)).user
            except grpc.aio.AioRpcError as error:
                raise _unwrap(error, f"user {user_id}") from None

        self._conversation_service = conversations
        self._conversations = change_feed.ChangeFedCache(client, change_feed.CONVERSATIONS, load_conversation)
        self._users = change_feed.ChangeFedCache(client, change_feed.USERS, load_user) if users else None

    async def start(self) -> None:
        await self._conversations.start()
        if self._users:
            await self._users.start()

    async def stop(self) -> None:
        await self._conversations.stop()
        if self._users:
            await self._users.stop()

    async def conversation(self, conversation_id: str) -> conversation_pb2.Conversation:
        return await self._conversations.get(conversation_id)

    async def fresh_conversation(self, conversation_id: str) -> conversation_pb2.Conversation:
        """Read from the source, past the cache: for a caller that heard of a change before
        the cache may have (two subscriptions to one announcement arrive in any order)."""
        self._conversations.forget(conversation_id)
        return await self._conversations.get(conversation_id)

    async def memberships(self, user_id: str) -> dict[str, conversation_pb2.Member]:
        """Every conversation the user is a member of now, with that membership (join time)."""
        found: dict[str, conversation_pb2.Member] = {}
        token = ""
        while True:
            request = conversation_requests.ListConversationsRequest(
                member_user_id=user_id, page_size=_MEMBERSHIP_PAGE, page_token=token
            )
            try:
                page = await self._conversation_service.ListConversations(request, timeout=5)
            except grpc.aio.AioRpcError as error:
                raise _unwrap(error, f"the conversations of user {user_id}") from None
            for conversation in page.conversations:
                for member in conversation.members:
                    if member.user_id == user_id:
                        found[conversation.conversation_id] = member
            if not (token := page.next_page_token):
                return found

    async def user(self, user_id: str) -> user_pb2.User:
        assert self._users is not None, "this directory was built without the user service"
        return await self._users.get(user_id)
