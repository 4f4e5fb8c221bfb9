"""What this service asks MessageService: where a conversation's event log or a user's
event stream stands now, and their events from a cursor on. Conversation events live in
MessageService's tables; this service only ever reads them through its public gRPC API.

Creating a webhook asks on the creating client's behalf (its client id passed on, see
services/runtime/tenancy.py), so MessageService refuses another client's conversation or user;
following a conversation's stream for a webhook already created is an internal call (the
conversation was checked then, and ownership never changes), while a user's stream is still read
on the client's behalf: it takes in conversations the user joins later."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import grpc
from chat4all.messaging.v1 import message_pb2, request_response_pb2 as rr, service_pb2_grpc

from services.runtime.errors import NotFound, ServiceError, Unavailable
from services.runtime.tenancy import client_metadata

# The timeout of proto/chat4all/messaging/v1/messaging_grpc_service_config.json.
CALL_TIMEOUT_SECONDS = 5.0
# StreamUserEvents' response header with the cursor of where the stream starts (documented
# on the RPC in proto/chat4all/messaging/v1/service.proto).
START_CURSOR_HEADER = "x-chat4all-start-cursor"


class MessagingClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._messages = service_pb2_grpc.MessageServiceStub(channel)

    async def head_cursor(self, conversation_id: uuid.UUID, client: str | None = None) -> str:
        """A cursor at the conversation's latest event: following from it yields exactly the
        events that happen afterwards. NOT_FOUND for an unknown conversation, or one that is not
        `client`'s (None: an internal call)."""
        try:
            reply = await self._messages.ListMessages(
                rr.ListMessagesRequest(conversation_id=str(conversation_id), page_size=1),
                timeout=CALL_TIMEOUT_SECONDS,
                metadata=client_metadata(client),
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"conversation {conversation_id} does not exist") from None
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                # Nothing was written yet: the caller may retry with the same request_id.
                raise Unavailable(f"cannot read conversation {conversation_id}: message service {error.code().name}") from None
            raise
        return reply.events_cursor

    def events(self, conversation_id: uuid.UUID, after_cursor: str) -> AsyncIterator[message_pb2.ConversationEvent]:
        """The conversation's events after the cursor, live, until cancelled or the stream breaks
        (grpc.aio.AioRpcError)."""
        request = rr.StreamConversationEventsRequest(conversation_id=str(conversation_id), after_cursor=after_cursor)
        return _events_of(lambda: self._messages.StreamConversationEvents(request))

    async def user_start_cursor(self, user_id: uuid.UUID, client: str | None = None) -> str:
        """A cursor at the user's stream as it stands now: following from it yields exactly the
        events that happen afterwards, in the conversations the user is in then or joins later.
        NOT_FOUND for an unknown user, or one that is not `client`'s (None: an internal call).

        StreamUserEvents has no head to list: a stream opened without a cursor is positioned at
        now and says where in its response headers, which is all that is read here."""
        call = self._messages.StreamUserEvents(
            rr.StreamUserEventsRequest(user_id=str(user_id)), metadata=client_metadata(client)
        )
        try:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                headers = await call.initial_metadata()
                start = dict(headers or ()).get(START_CURSOR_HEADER)
                if start:
                    return start
                if not call.done():  # positioned, yet no cursor: a MessageService without it
                    raise Unavailable("message service sent no start cursor for the user stream")
                code, details = await call.code(), await call.details()
        except TimeoutError:
            raise Unavailable(f"cannot open the event stream of user {user_id}: message service timed out") from None
        finally:
            call.cancel()
        raise _stream_error(code, details, f"user {user_id}")

    def user_events(
        self, user_id: uuid.UUID, after_cursor: str, client: str | None = None
    ) -> AsyncIterator[message_pb2.ConversationEvent]:
        """The events of every conversation (of `client`) the user is in after the cursor (each
        carrying a cursor of this user stream), live, until cancelled or the stream breaks."""
        request = rr.StreamUserEventsRequest(user_id=str(user_id), after_cursor=after_cursor)
        return _events_of(lambda: self._messages.StreamUserEvents(request, metadata=client_metadata(client)))


async def _events_of(open_call: Callable[[], grpc.aio.UnaryStreamCall]) -> AsyncIterator[message_pb2.ConversationEvent]:
    call = open_call()  # opened when first read, so an iterator never read holds no stream
    try:
        async for response in call:
            yield response.event
    finally:
        call.cancel()


def _stream_error(code: grpc.StatusCode, details: str, what: str) -> ServiceError:
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"{what} does not exist")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        # Nothing was written yet: the caller may retry with the same request_id.
        return Unavailable(f"cannot open the event stream of {what}: message service {code.name}")
    return ServiceError(f"the event stream of {what} failed: message service {code.name}: {details}")  # INTERNAL
