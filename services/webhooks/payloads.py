"""What a webhook receives for one conversation event: its id, its type, and the exact body.

The body is a WebhookEvent in the protobuf JSON mapping Envoy gives REST clients
(lowerCamelCase names, enums by name, every field printed), serialised once when the event
is queued, so every attempt sends, and signs, the same bytes.

The event id is the same for one event however often a stream is read and whichever webhook,
conversation- or user-scoped, receives it. It cannot come from the cursor: one event carries a
conversation cursor on StreamConversationEvents and a different user-stream cursor (the user's
whole position vector) on StreamUserEvents. Nor from the conversation's seq: neither stream
shows it (cursors are opaque, and a user-stream cursor may hold its positions in a stored
checkpoint). What both streams do agree on is the event itself: each sends the event stored in
the conversation's log, byte for byte, and sets only `cursor`. So the id is a UUIDv5 of the
conversation and a digest of the event without its cursor. Distinct events differ in content
(a message_created names its message; a status change its message, recipient, status and when
it was recorded), so they get distinct ids; only byte-identical events would share one, and a
receiver could not tell those apart anyway.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from chat4all.messaging.v1 import message_pb2 as messaging_pb
from chat4all.webhooks.v1 import message_pb2 as pb
from google.protobuf import json_format

# Event ids are UUIDv5 names in this namespace. Until user-scoped webhooks, the name was
# (conversation, cursor); deliveries queued then keep those ids.
EVENT_ID_NAMESPACE = uuid.UUID("0f6f3a52-5d5e-4f0b-9a34-6c1b8e0c7d21")

EVENT_TYPES = {
    "message_created": pb.WEBHOOK_EVENT_TYPE_MESSAGE_CREATED,
    "delivery_status_changed": pb.WEBHOOK_EVENT_TYPE_DELIVERY_STATUS_CHANGED,
}
# The X-Chat4All-Event-Type header: the ConversationEvent.event case.
EVENT_TYPE_NAMES = {number: name for name, number in EVENT_TYPES.items()}


@dataclass(frozen=True)
class Payload:
    event_id: uuid.UUID
    event_type: int
    body: bytes


def event_type(event: messaging_pb.ConversationEvent) -> int:
    """The event's WebhookEventType; UNSPECIFIED for a case this service does not know yet."""
    case = event.WhichOneof("event")
    return EVENT_TYPES.get(case or "", pb.WEBHOOK_EVENT_TYPE_UNSPECIFIED)


def event_id(event: messaging_pb.ConversationEvent) -> uuid.UUID:
    stored = messaging_pb.ConversationEvent()
    stored.CopyFrom(event)
    stored.ClearField("cursor")  # the only part that depends on which stream sent it
    # deterministic: map entries in a fixed order, so equal events always give equal bytes.
    digest = hashlib.sha256(stored.SerializeToString(deterministic=True)).hexdigest()
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{event.conversation_id}/sha256:{digest}")


def payload(webhook_id: uuid.UUID, event: messaging_pb.ConversationEvent) -> Payload:
    envelope = pb.WebhookEvent(
        event_id=str(event_id(event)), webhook_id=str(webhook_id), event_type=event_type(event), event=event
    )
    body = json_format.MessageToJson(
        envelope, indent=None, ensure_ascii=False, always_print_fields_with_no_presence=True
    ).encode()
    return Payload(uuid.UUID(envelope.event_id), envelope.event_type, body)
