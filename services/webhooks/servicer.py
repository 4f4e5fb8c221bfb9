"""The WebhookService gRPC servicer: checks requests, asks MessageService where the streams
of a new webhook (its conversations', or its user's) stand, and leaves the rest to the store;
`setup` also starts the dispatcher (followers + sender) in the same process.

A client sees only its own webhooks, and scopes a new one only to its own conversations or
users: MessageService is asked on its behalf (services/runtime/tenancy.py), so another
client's is NOT_FOUND. An internal call (no client id) sees every webhook. The followers,
which read the streams of webhooks already created, make internal calls."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from pathlib import Path

import grpc
from chat4all.webhooks.v1 import message_pb2 as pb, request_response_pb2 as rr, service_pb2, service_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.runtime import page_tokens
from services.runtime.app import Runtime
from services.runtime.errors import InvalidArgument
from services.runtime.idempotency import request_hash
from services.runtime.tenancy import caller_client
from services.runtime.validation import page_size, parse_request_id, parse_uuid
from services.webhooks import sender, signing
from services.webhooks.destinations import check_url
from services.webhooks.dispatcher import Dispatcher
from services.webhooks.followers import Followers
from services.webhooks.messaging_client import MessagingClient
from services.webhooks.settings import WebhookSettings
from services.webhooks.store import NewWebhook, WebhookStore

SERVICE = service_pb2.DESCRIPTOR.services_by_name["WebhookService"]
SERVICE_NAME = SERVICE.full_name
MIGRATIONS = Path(__file__).parent / "migrations"

MAX_PAGE_SIZE = 1000  # the contract: "values above 1000 are treated as 1000"
# Each conversation is one stream this service follows; the contract caps a webhook at 100.
MAX_CONVERSATIONS = 100
MAX_DESCRIPTION = 256
_EVENT_TYPES = set(pb.WebhookEventType.values()) - {pb.WEBHOOK_EVENT_TYPE_UNSPECIFIED}
_STATES = set(pb.WebhookDeliveryState.values())


class WebhookService(service_pb2_grpc.WebhookServiceServicer):
    def __init__(
        self, store: WebhookStore, messaging: MessagingClient, settings: WebhookSettings, on_change=lambda: None
    ) -> None:
        self.store, self.messaging, self.settings = store, messaging, settings
        # Tells this process's followers to look at the sources now, not at the next scan.
        self.on_change = on_change

    async def CreateWebhook(
        self, request: rr.CreateWebhookRequest, context: grpc.aio.ServicerContext
    ) -> rr.CreateWebhookResponse:
        request_id = parse_request_id(request.request_id)
        url = check_url(request.url, self.settings.deliver_to_private_networks)
        new = _new_webhook(url, request)
        client, digest = caller_client(context), request_hash("CreateWebhook", request)
        earlier = await self.store.earlier_create(client, request_id, digest)
        if earlier is None:
            # Where each stream stands now: the webhook gets exactly what happens next.
            cursors = await self._start_cursors(new, client)
            earlier = await self.store.create_webhook(client, request_id, digest, new, cursors, signing.new_secret())
            self.on_change()
        webhook, secret = earlier
        return rr.CreateWebhookResponse(webhook=webhook, signing_secret=secret)

    async def _start_cursors(self, new: NewWebhook, client: str | None) -> dict[uuid.UUID, str]:
        """The cursor each of the webhook's streams starts from; NOT_FOUND for a conversation
        or user that does not exist or is not the client's."""
        if new.user_id is not None:
            # The user stream positioned now: later it also covers conversations joined after.
            return {new.user_id: await self.messaging.user_start_cursor(new.user_id, client)}
        heads = await asyncio.gather(*(self.messaging.head_cursor(c, client) for c in new.conversation_ids))
        return dict(zip(new.conversation_ids, heads, strict=True))

    async def GetWebhook(self, request: rr.GetWebhookRequest, context: grpc.aio.ServicerContext) -> rr.GetWebhookResponse:
        webhook_id = parse_uuid(request.webhook_id, "webhook_id")
        return rr.GetWebhookResponse(webhook=await self.store.get_webhook(caller_client(context), webhook_id))

    async def ListWebhooks(
        self, request: rr.ListWebhooksRequest, context: grpc.aio.ServicerContext
    ) -> rr.ListWebhooksResponse:
        client = caller_client(context)
        limit = page_size(request.page_size, maximum=MAX_PAGE_SIZE)
        scope = "webhooks:internal" if client is None else f"webhooks:client:{client}"
        after = None
        if request.page_token:
            position = page_tokens.decode(request.page_token, scope)
            after = (_parse_time(position.get("t")), _parse_position_id(position.get("id")))
        webhooks, last = await self.store.list_webhooks(client, limit, after)
        response = rr.ListWebhooksResponse(webhooks=webhooks)
        if last is not None:
            stamp = Timestamp()
            stamp.FromDatetime(last[0])
            response.next_page_token = page_tokens.encode(scope, t=stamp.ToJsonString(), id=str(last[1]))
        return response

    async def DeleteWebhook(
        self, request: rr.DeleteWebhookRequest, context: grpc.aio.ServicerContext
    ) -> rr.DeleteWebhookResponse:
        request_id = parse_request_id(request.request_id)
        webhook_id = parse_uuid(request.webhook_id, "webhook_id")
        await self.store.delete_webhook(caller_client(context), request_id, request_hash("DeleteWebhook", request), webhook_id)
        self.on_change()
        return rr.DeleteWebhookResponse()

    async def ListWebhookDeliveries(
        self, request: rr.ListWebhookDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> rr.ListWebhookDeliveriesResponse:
        webhook_id = parse_uuid(request.webhook_id, "webhook_id")
        if request.state not in _STATES:
            raise InvalidArgument(f"state: unknown state {request.state}")
        limit = page_size(request.page_size, maximum=MAX_PAGE_SIZE)
        scope = f"deliveries:{webhook_id}:{request.state}"
        before = None
        if request.page_token:
            before = page_tokens.decode(request.page_token, scope).get("before")
            if not isinstance(before, int):
                raise InvalidArgument("page_token is malformed")
        deliveries, last = await self.store.list_deliveries(caller_client(context), webhook_id, request.state, limit, before)
        response = rr.ListWebhookDeliveriesResponse(deliveries=deliveries)
        if last is not None:
            response.next_page_token = page_tokens.encode(scope, before=last)
        return response


# Request checks: INVALID_ARGUMENT naming the field -----------------------------------------


def _new_webhook(url: str, request: rr.CreateWebhookRequest) -> NewWebhook:
    if not request.HasField("filter"):
        raise InvalidArgument("filter is required")
    scope = request.filter.WhichOneof("scope")
    if scope is None:
        raise InvalidArgument("filter: set conversations or user_id")
    user_id = parse_uuid(request.filter.user_id, "filter.user_id") if scope == "user_id" else None
    conversation_ids = _conversation_ids(request.filter.conversations) if scope == "conversations" else []
    event_types = list(request.filter.event_types)
    for n, event_type in enumerate(event_types):
        if event_type not in _EVENT_TYPES:
            raise InvalidArgument(f"filter.event_types[{n}]: unknown event type {event_type}")
    if len(request.description) > MAX_DESCRIPTION:
        raise InvalidArgument(f"description is longer than {MAX_DESCRIPTION} characters")
    return NewWebhook(url, request.description, conversation_ids, sorted(set(event_types)), user_id)


def _conversation_ids(conversations: pb.ConversationSet) -> list[uuid.UUID]:
    ids = conversations.conversation_ids
    if not ids:
        raise InvalidArgument("filter.conversations.conversation_ids: at least one conversation is required")
    if len(ids) > MAX_CONVERSATIONS:
        raise InvalidArgument(f"filter.conversations.conversation_ids: at most {MAX_CONVERSATIONS} conversations")
    conversation_ids = [parse_uuid(c, f"filter.conversations.conversation_ids[{n}]") for n, c in enumerate(ids)]
    if len(set(conversation_ids)) != len(conversation_ids):
        raise InvalidArgument("filter.conversations.conversation_ids: a conversation is listed twice")
    return conversation_ids


def _parse_time(value) -> datetime.datetime:
    stamp = Timestamp()
    try:
        stamp.FromJsonString(value)
    except (ValueError, TypeError, AttributeError):
        raise InvalidArgument("page_token is malformed") from None
    return stamp.ToDatetime(datetime.UTC)


def _parse_position_id(value) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise InvalidArgument("page_token is malformed") from None


async def setup(runtime: Runtime) -> None:
    settings: WebhookSettings = runtime.settings  # type: ignore[assignment]
    pool = await runtime.postgres("webhooks", MIGRATIONS)
    messaging = MessagingClient(await runtime.channel(settings.messaging_target))
    session = await runtime.own(
        sender.open_session(settings.delivery_concurrency, settings.deliver_to_private_networks), lambda s: s.close()
    )
    dispatcher = Dispatcher(pool, session, settings)
    followers = Followers(pool, messaging, settings, on_queued=dispatcher.wake)
    # Closed in reverse: followers first, then the dispatcher drains, then the session and pool.
    await dispatcher.start()
    runtime.on_shutdown(dispatcher.stop)
    await followers.start()
    runtime.on_shutdown(followers.stop)
    servicer = WebhookService(WebhookStore(pool), messaging, settings, on_change=followers.rescan)
    runtime.add_servicer(service_pb2_grpc.add_WebhookServiceServicer_to_server, servicer, SERVICE_NAME)
