"""Inbound platform messages become conversation messages.

A connector publishes what a platform sent (chat4all.inbound.v1, keyed by the
platform chat, so one chat stays in order). Here the sender is resolved to a
user (created on first contact), the chat to the conversation bound to it
(created on first contact), and the message is published as accepted on the
messages topic like any other, so storage, fan-out and streams are shared.

Every id derived here is a pure function of the platform's ids, so a redelivered
or duplicated platform message maps to the same message and is stored once,
and concurrent first messages create one user and one conversation.

On whose behalf: the users and conversations made here belong to the client that owns the
platform accounts (C4A_INBOUND_OWNER_CLIENT_ID; services/runtime/tenancy.py). The router calls
UserService and ConversationService with that client's id in the x-chat4all-client-id
metadata, as the front door does for a client, rather than with a field of the requests: the
services then apply the very rules a client's call gets (owner of what is created, senders
resolved among that client's users, the bound conversation looked up among its conversations),
and no public request grows a field that lets a caller name the owner of what it creates.
Without an owner the calls are internal and what they create is unowned.
"""

from __future__ import annotations

import hashlib
import logging
import uuid

import grpc
from aiokafka import AIOKafkaProducer, ConsumerRecord
from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.conversations.v1 import request_response_pb2 as conversation_requests
from chat4all.conversations.v1 import service_pb2_grpc as conversation_grpc
from chat4all.events.v1 import event_pb2
from chat4all.users.v1 import message_pb2 as user_pb2
from chat4all.users.v1 import request_response_pb2 as user_requests
from chat4all.users.v1 import service_pb2_grpc as user_grpc
from opentelemetry import trace

from services.messaging import topics
from services.messaging.attachments import Attachments
from services.runtime import kafka
from services.runtime.tenancy import client_metadata

log = logging.getLogger("chat4all.router.inbound")
tracer = trace.get_tracer("chat4all.router")


def derived_id(*parts: object) -> str:
    """A UUIDv4-shaped id that is a pure function of `parts` (idempotency keys, inbound message ids)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


class InboundIngest:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        users: user_grpc.UserServiceStub,
        conversations: conversation_grpc.ConversationServiceStub,
        attachments: Attachments,
        owner_client_id: str = "",
    ) -> None:
        self.attachments = attachments
        self.producer = producer
        self.users = users
        self.conversations = conversations
        self.owner = owner_client_id or None
        self._metadata = client_metadata(self.owner)

    def _derived_id(self, kind: str, *parts: object) -> str:
        """A request id of the owner's: with no owner, the ids of before owners existed, so the
        requests a router made then still answer as they did."""
        return derived_id(kind, *(() if self.owner is None else ("owner", self.owner)), *parts)

    async def handle(self, record: ConsumerRecord) -> None:
        event = kafka.decode(record, event_pb2.Event)
        if event.WhichOneof("payload") != "inbound_message_received":
            log.warning("skipping a non-inbound event on the inbound topic")
            return
        with tracer.start_as_current_span("ingest inbound", context=kafka.trace_context(record), kind=trace.SpanKind.CONSUMER):
            await self.ingest(event.inbound_message_received)

    async def ingest(self, inbound: event_pb2.InboundMessageReceived) -> str:
        sender = await self._sender(inbound)
        conversation = await self._conversation(inbound, sender)
        message_id = derived_id("inbound-message", inbound.channel, inbound.account_id, inbound.external_chat_id, inbound.external_message_id)
        event = event_pb2.Event(event_id=derived_id("inbound-event", message_id), conversation_id=conversation.conversation_id)
        event.occur_time.CopyFrom(inbound.receive_time)
        message = event.message_accepted.message
        message.message_id = message_id
        message.conversation_id = conversation.conversation_id
        message.sender_user_id = sender.user_id
        message.content.CopyFrom(inbound.content)
        if inbound.content.attachments:
            # The connector imported the media: keep what the file service knows of each.
            described = await self.attachments.described(inbound.content.attachments)
            del message.content.attachments[:]
            message.content.attachments.extend(described)
        origin = message.origin.inbound
        origin.channel = inbound.channel
        origin.account_id = inbound.account_id
        origin.external_message_id = inbound.external_message_id
        origin.external_sender_id = inbound.external_sender_id
        origin.external_chat_id = inbound.external_chat_id
        message.create_time.CopyFrom(inbound.receive_time)
        await kafka.publish(self.producer, topics.MESSAGES, conversation.conversation_id, event)
        return message_id

    async def _sender(self, inbound: event_pb2.InboundMessageReceived) -> user_pb2.User:
        lookup = user_requests.ResolveIdentityRequest(channel=inbound.channel, external_id=inbound.external_sender_id)
        try:
            return (await self.users.ResolveIdentity(lookup, timeout=5, metadata=self._metadata)).user
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
        name = inbound.external_sender_display_name or f"{channel_pb2.Channel.Name(inbound.channel)} {inbound.external_sender_id}"
        create = user_requests.CreateUserRequest(
            request_id=self._derived_id("inbound-user", inbound.channel, inbound.external_sender_id),
            display_name=name,
            identities=[user_pb2.ExternalIdentity(channel=inbound.channel, external_id=inbound.external_sender_id, display_name=name)],
            preferred_channel=inbound.channel,
        )
        try:
            return (await self.users.CreateUser(create, timeout=5, metadata=self._metadata)).user
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.ALREADY_EXISTS:  # linked meanwhile by someone else
                raise
            return (await self.users.ResolveIdentity(lookup, timeout=5, metadata=self._metadata)).user

    async def _conversation(self, inbound: event_pb2.InboundMessageReceived, sender: user_pb2.User) -> conversation_pb2.Conversation:
        binding = conversation_pb2.PlatformBinding(
            channel=inbound.channel, account_id=inbound.account_id, external_group_id=inbound.external_chat_id
        )
        found = await self.conversations.ListConversations(
            conversation_requests.ListConversationsRequest(platform_binding=binding, page_size=1),
            timeout=5,
            metadata=self._metadata,
        )
        if found.conversations:
            conversation = found.conversations[0]
            if not any(m.user_id == sender.user_id for m in conversation.members):
                added = await self.conversations.AddMember(
                    conversation_requests.AddMemberRequest(
                        request_id=self._derived_id("inbound-member", conversation.conversation_id, sender.user_id),
                        conversation_id=conversation.conversation_id,
                        member=conversation_pb2.Member(user_id=sender.user_id, preferred_channel=inbound.channel),
                    ),
                    timeout=5,
                    metadata=self._metadata,
                )
                conversation = added.conversation
            return conversation
        create = conversation_requests.CreateConversationRequest(
            request_id=self._derived_id("inbound-conversation", inbound.channel, inbound.account_id, inbound.external_chat_id),
            type=conversation_pb2.ConversationType.CONVERSATION_TYPE_GROUP,
            title=sender.display_name,
            members=[conversation_pb2.Member(user_id=sender.user_id, preferred_channel=inbound.channel)],
            platform_binding=binding,
        )
        try:
            return (await self.conversations.CreateConversation(create, timeout=5, metadata=self._metadata)).conversation
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
            # Another sender's first message in this chat created it a moment ago.
            return await self._conversation(inbound, sender)
