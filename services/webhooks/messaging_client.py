"""What this service asks MessageService: where a conversation's event log stands now, and
its events from a cursor on. Conversation events live in MessageService's tables; this
service only ever reads them through its public gRPC API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
from chat4all.messaging.v1 import message_pb2, request_response_pb2 as rr, service_pb2_grpc

from services.runtime.errors import NotFound, Unavailable

# The timeout of proto/chat4all/messaging/v1/messaging_grpc_service_config.json.
CALL_TIMEOUT_SECONDS = 5.0


class MessagingClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._messages = service_pb2_grpc.MessageServiceStub(channel)

    async def head_cursor(self, conversation_id: uuid.UUID) -> str:
        """A cursor at the conversation's latest event: following from it yields exactly the
        events that happen afterwards. NOT_FOUND for an unknown conversation."""
        try:
            reply = await self._messages.ListMessages(
                rr.ListMessagesRequest(conversation_id=str(conversation_id), page_size=1), timeout=CALL_TIMEOUT_SECONDS
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
        return self._follow(conversation_id, after_cursor)

    async def _follow(self, conversation_id: uuid.UUID, after_cursor: str) -> AsyncIterator[message_pb2.ConversationEvent]:
        call = self._messages.StreamConversationEvents(
            rr.StreamConversationEventsRequest(conversation_id=str(conversation_id), after_cursor=after_cursor)
        )
        try:
            async for response in call:
                yield response.event
        finally:
            call.cancel()
