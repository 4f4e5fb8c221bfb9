"""Conversations and users as the messaging domain reads them on every message:
cached in-process and emptied when the conversation or user service announces a
change (see services/runtime/change_feed.py). A user's memberships, read when a
user stream opens or refreshes, are not cached: the stream keeps them itself.

For a client's call (services/runtime/tenancy.py) the owning service decides whether the
client may see the conversation or user: it is asked once on the client's behalf (the client
id passed on), and the verdict is kept, since ownership never changes. The cached copies
themselves are per resource, read only after that check."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

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
from services.runtime.tenancy import client_metadata

# Conversations per ListConversations page when listing a user's memberships. Each comes with
# all of its members, so a page of large groups must stay well under gRPC's 4 MB message limit.
_MEMBERSHIP_PAGE = 100
# Verdicts kept per process: (kind, client, id) -> whether the client may see it.
_MAX_VERDICTS = 100_000


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
        max_verdicts: int = _MAX_VERDICTS,
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
        self._user_service = users
        self._conversations = change_feed.ChangeFedCache(client, change_feed.CONVERSATIONS, load_conversation)
        self._users = change_feed.ChangeFedCache(client, change_feed.USERS, load_user) if users else None
        self._verdicts: OrderedDict[tuple[str, str, str], bool] = OrderedDict()
        self._max_verdicts = max_verdicts

    async def start(self) -> None:
        await self._conversations.start()
        if self._users:
            await self._users.start()

    async def stop(self) -> None:
        await self._conversations.stop()
        if self._users:
            await self._users.stop()

    async def conversation(self, conversation_id: str, caller: str | None = None) -> conversation_pb2.Conversation:
        """The conversation; NOT_FOUND, as for an unknown one, if it is not the caller's
        (None: an internal call, which sees every conversation)."""
        if caller is not None and not await self.owns_conversation(caller, conversation_id):
            raise NotFound(f"conversation {conversation_id} does not exist")
        return await self._conversations.get(conversation_id)

    async def owns_conversation(self, caller: str, conversation_id: str) -> bool:
        """Whether the client may see the conversation (False also when it does not exist)."""

        async def ask() -> None:
            request = conversation_requests.GetConversationRequest(conversation_id=conversation_id)
            await self._conversation_service.GetConversation(request, timeout=5, metadata=client_metadata(caller))

        return await self._verdict("conversation", caller, conversation_id, ask)

    async def owns_user(self, caller: str, user_id: str) -> bool:
        """Whether the client may see the user (False also when it does not exist)."""
        assert self._user_service is not None, "this directory was built without the user service"
        users = self._user_service

        async def ask() -> None:
            await users.GetUser(user_requests.GetUserRequest(user_id=user_id), timeout=5, metadata=client_metadata(caller))

        return await self._verdict("user", caller, user_id, ask)

    async def _verdict(self, kind: str, caller: str, resource_id: str, ask: Callable[[], Awaitable[None]]) -> bool:
        """Asked once per client and resource: ownership never changes, and ids are assigned by
        the owning service, so an id unknown now never becomes this client's later."""
        key = (kind, caller, resource_id)
        verdict = self._verdicts.get(key)
        if verdict is not None:
            self._verdicts.move_to_end(key)
            return verdict
        try:
            await ask()
            verdict = True
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise _unwrap(error, f"{kind} {resource_id}") from None
            verdict = False
        self._verdicts[key] = verdict
        if len(self._verdicts) > self._max_verdicts:
            self._verdicts.popitem(last=False)
        return verdict

    async def fresh_conversation(self, conversation_id: str) -> conversation_pb2.Conversation:
        """Read from the source, past the cache: for a caller that heard of a change before
        the cache may have (two subscriptions to one announcement arrive in any order)."""
        self._conversations.forget(conversation_id)
        return await self._conversations.get(conversation_id)

    async def memberships(self, user_id: str, caller: str | None = None) -> dict[str, conversation_pb2.Member]:
        """Every conversation the user is a member of now, with that membership (join time);
        only the caller's conversations (None: an internal call, every one)."""
        found: dict[str, conversation_pb2.Member] = {}
        token = ""
        while True:
            request = conversation_requests.ListConversationsRequest(
                member_user_id=user_id, page_size=_MEMBERSHIP_PAGE, page_token=token
            )
            try:
                page = await self._conversation_service.ListConversations(
                    request, timeout=5, metadata=client_metadata(caller)
                )
            except grpc.aio.AioRpcError as error:
                raise _unwrap(error, f"the conversations of user {user_id}") from None
            for conversation in page.conversations:
                for member in conversation.members:
                    if member.user_id == user_id:
                        found[conversation.conversation_id] = member
            if not (token := page.next_page_token):
                return found

    async def user(self, user_id: str, caller: str | None = None) -> user_pb2.User:
        """The user; NOT_FOUND, as for an unknown one, if it is not the caller's."""
        assert self._users is not None, "this directory was built without the user service"
        if caller is not None and not await self.owns_user(caller, user_id):
            raise NotFound(f"user {user_id} does not exist")
        return await self._users.get(user_id)
