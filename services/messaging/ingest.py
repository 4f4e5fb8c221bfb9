"""SendMessage: validate, assign a UUIDv4 message_id, make the message durable in
Kafka, and only then answer.

Only the caller's conversation and files (services/runtime/tenancy.py): another client's
is NOT_FOUND, as an unknown one.

Idempotency (AIP-155, per client): the key row is inserted in the transaction
that waits for the broker's acknowledgement. A concurrent duplicate blocks on
that row and then reads the committed answer; if the broker fails, the
transaction rolls back and nothing is left half-written.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from chat4all.events.v1 import event_pb2
from chat4all.messaging.v1 import message_pb2, request_response_pb2
from psycopg_pool import AsyncConnectionPool

from services.messaging import topics
from services.messaging.attachments import Attachments
from services.messaging.directory import Directory
from services.runtime import kafka
from services.runtime.errors import (
    AlreadyExists,
    InvalidArgument,
    PermissionDenied,
    Unavailable,
)
from services.runtime.idempotency import request_hash
from services.runtime.validation import require_uuid

log = logging.getLogger("chat4all.messaging.ingest")

MAX_TEXT_CHARS = 4096  # the smallest platform limit (Telegram, WhatsApp text)
MAX_ATTACHMENTS = 10
ACCEPTED = message_pb2.DeliveryStatus.DELIVERY_STATUS_ACCEPTED
CLIENT_HEADER = "chat4all-client-id"


def validate_content(content: message_pb2.MessageContent) -> None:
    body = content.WhichOneof("body")
    if body is None and not content.attachments:
        raise InvalidArgument("content needs text, a template or at least one attachment")
    if body == "text":
        if not content.text.strip():
            raise InvalidArgument("content.text is empty")
        if len(content.text) > MAX_TEXT_CHARS:
            raise InvalidArgument(f"content.text is {len(content.text)} characters; the limit is {MAX_TEXT_CHARS}")
    if body == "template" and not (content.template.name and content.template.language):
        raise InvalidArgument("content.template needs name and language")
    if len(content.attachments) > MAX_ATTACHMENTS:
        raise InvalidArgument(f"at most {MAX_ATTACHMENTS} attachments per message")


class Ingest:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        producer: AIOKafkaProducer,
        directory: Directory,
        attachments: Attachments,
        ack_timeout: float = 10.0,
    ) -> None:
        self.ack_timeout = ack_timeout
        self.attachments = attachments
        self.pool = pool
        self.producer = producer
        self.directory = directory

    async def send(
        self, client_id: str, request: request_response_pb2.SendMessageRequest, caller: str | None = None
    ) -> request_response_pb2.SendMessageResponse:
        """`client_id` keys the idempotency of the request ("anonymous" for internal calls);
        `caller` is the client whose conversation and files it may use (None: internal)."""
        request_id = require_uuid(request.request_id, "request_id", v4=True)
        conversation_id = require_uuid(request.conversation_id, "conversation_id")
        sender = require_uuid(request.sender_user_id, "sender_user_id")
        if not request.HasField("content"):
            raise InvalidArgument("content is required")
        validate_content(request.content)
        await self._check_membership(conversation_id, sender, caller)
        content = request.content
        if content.attachments:
            content = message_pb2.MessageContent()
            content.CopyFrom(request.content)
            described = await self.attachments.for_send(request.content.attachments, sender, caller)
            del content.attachments[:]
            content.attachments.extend(described)

        message_id = str(uuid.uuid4())
        response = request_response_pb2.SendMessageResponse(message_id=message_id, status=ACCEPTED)
        response.accept_time.GetCurrentTime()
        digest = request_hash("SendMessage", request)

        async with self.pool.connection() as conn, conn.transaction():
            claimed = await (
                await conn.execute(
                    """
                    INSERT INTO idempotency_keys (client_id, request_id, request_hash, response)
                    VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1
                    """,
                    (client_id, request_id, digest, response.SerializeToString()),
                )
            ).fetchone()
            if claimed is None:
                return await self._earlier_answer(conn, client_id, request_id, digest)
            await self._publish(client_id, request_id, message_id, conversation_id, sender, content, response)
        return response

    async def _check_membership(self, conversation_id: str, sender: str, caller: str | None) -> None:
        conversation = await self.directory.conversation(conversation_id, caller)
        if not any(member.user_id == sender for member in conversation.members):
            raise PermissionDenied(f"user {sender} is not a member of conversation {conversation_id}")

    async def _earlier_answer(self, conn, client_id: str, request_id: str, request_hash: bytes):
        stored_hash, stored = await (
            await conn.execute(
                "SELECT request_hash, response FROM idempotency_keys WHERE client_id = %s AND request_id = %s",
                (client_id, request_id),
            )
        ).fetchone()
        if bytes(stored_hash) != request_hash:
            raise AlreadyExists(f"request_id {request_id} was already used for a different request")
        return request_response_pb2.SendMessageResponse.FromString(stored)

    async def _publish(self, client_id, request_id, message_id, conversation_id, sender, content, response) -> None:
        event = event_pb2.Event(event_id=str(uuid.uuid4()), conversation_id=conversation_id)
        event.occur_time.CopyFrom(response.accept_time)
        message = event.message_accepted.message
        message.message_id = message_id
        message.conversation_id = conversation_id
        message.sender_user_id = sender
        message.content.CopyFrom(content)
        message.origin.internal.request_id = request_id
        message.create_time.CopyFrom(response.accept_time)
        try:
            async with asyncio.timeout(self.ack_timeout):
                await kafka.publish(self.producer, topics.MESSAGES, conversation_id, event, {CLIENT_HEADER: client_id})
        except (KafkaError, TimeoutError) as error:
            log.warning("broker did not acknowledge", extra={"error": type(error).__name__})
            raise Unavailable("the message broker did not acknowledge; nothing was accepted, retry with the same request_id") from None
