"""What WhatsApp's webhooks carry, handled: user messages become InboundMessageReceived
events (chat4all.inbound.v1), status reports become delivery status changes.

An envelope holds `entry[].changes[]` with `field: "messages"`; each change's
`value` has `metadata.phone_number_id` (ours, or not ours to handle), `contacts`
(profile names by wa_id), `messages` and `statuses`. Each message is published
once per wamid and each status once per (wamid, status): Meta redelivers for
days and in no order. A user's message to the number (not one in a group) also
opens their 24-hour window. Any failure raises, the webhook answers 500, and
Meta delivers the envelope again.

A message's media are imported into the file service before it is published
(media_import.py): WhatsApp names them by media id, `GET /{media_id}` gives a
short-lived URL fetched with the same bearer token. The caption goes with the
file; it becomes the message text only when the file could not be imported
(the message then carries the platform's reference, and still says what the
sender wrote).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chat4all.channel.v1 import channel_pb2
from chat4all.connector.v1 import message_pb2
from chat4all.conversations.v1 import message_pb2 as conversations_pb2
from chat4all.events.v1 import event_pb2
from chat4all.messaging.v1 import message_pb2 as messaging_pb2

from connectors.sdk.http import PlatformHttp
from connectors.sdk.inbound import InboundPublisher, event_id_for, inbound_key
from connectors.sdk.media_import import Locate, MediaImporter, MediaLocation, stated_sha256
from connectors.sdk.meta import graph_error
from connectors.sdk.reply_window import ReplyWindow
from connectors.sdk.statuses import StatusReports
from services.messaging import topics

log = logging.getLogger("chat4all.whatsapp.events")

S = messaging_pb2.DeliveryStatus
STATUSES = {
    "sent": S.DELIVERY_STATUS_SENT,
    "delivered": S.DELIVERY_STATUS_DELIVERED,
    "read": S.DELIVERY_STATUS_READ,
    "failed": S.DELIVERY_STATUS_FAILED,
}
K = message_pb2.ContentKind
_MEDIA_KINDS = {
    "image": K.CONTENT_KIND_IMAGE,
    "audio": K.CONTENT_KIND_AUDIO,
    "video": K.CONTENT_KIND_VIDEO,
    "document": K.CONTENT_KIND_DOCUMENT,
    "sticker": K.CONTENT_KIND_STICKER,
}


def _seconds(value: Any) -> float:
    """WhatsApp timestamps are strings of unix seconds."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return time.time()


def failure_reason(errors: Any) -> tuple[str, str]:
    """(reason, platform error code) of a failed status's `errors`."""
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return "WhatsApp reported the message failed without a reason", ""
    error = errors[0]
    text = str(error.get("message") or error.get("title") or "failed")
    details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
    if details and details not in text:
        text = f"{text}: {details}"
    return text, str(error.get("code", ""))


def message_event(message: dict[str, Any], names: dict[str, str], phone_number_id: str) -> tuple[event_pb2.Event | None, str]:
    """The event for one webhook message, or None and why it is not one."""
    wamid, sender, kind = message.get("id"), message.get("from"), message.get("type")
    if not isinstance(wamid, str) or not isinstance(sender, str):
        return None, "a message without its id or sender"
    group_id = message.get("group_id")
    event = event_pb2.Event(event_id=event_id_for("whatsapp-message", phone_number_id, wamid))
    received = event.inbound_message_received
    received.channel = channel_pb2.CHANNEL_WHATSAPP
    received.account_id = phone_number_id
    received.external_sender_id = sender
    received.external_sender_display_name = names.get(sender, "")
    received.external_message_id = wamid
    received.external_chat_id = group_id if isinstance(group_id, str) and group_id else sender
    received.chat_type = conversations_pb2.CONVERSATION_TYPE_GROUP if group_id else conversations_pb2.CONVERSATION_TYPE_DIRECT
    if kind == "text" and isinstance(message.get("text"), dict):
        received.content.text = str(message["text"].get("body", ""))
    elif kind in _MEDIA_KINDS and isinstance(message.get(kind), dict):
        fields = message[kind]
        received.media.add(
            kind=_MEDIA_KINDS[kind],
            media_id=str(fields.get("id", "")),
            url=str(fields.get("url", "")),
            mime_type=str(fields.get("mime_type", "")),
            sha256=str(fields.get("sha256", "")),
            caption=str(fields.get("caption", "")),
            filename=str(fields.get("filename", "")),
        )
    else:
        return None, f"a {kind} message is not handled"
    platform_seconds = _seconds(message.get("timestamp"))
    received.platform_time.FromNanoseconds(int(platform_seconds * 1e9))
    received.receive_time.FromNanoseconds(time.time_ns())
    event.occur_time.CopyFrom(received.platform_time)
    return event, ""


def media_locator(http: PlatformHttp, base_url: str, auth_headers: dict[str, str]) -> Locate:
    """Where WhatsApp serves a webhook's media: `GET /{media_id}` answers its URL (fetched with
    the same bearer token, for a few minutes), type, size and SHA-256."""

    async def locate(media: event_pb2.PlatformMedia) -> MediaLocation:
        if not media.media_id:
            raise ValueError("the media has no id")
        answer = await http.request("media_info", "GET", f"{base_url}/{media.media_id}", headers=auth_headers)
        if answer.status != 200:
            raise graph_error("whatsapp", "media_info", answer)
        info = answer.json_object()
        if not isinstance(info.get("url"), str) or not info["url"]:
            raise ValueError("the media's description has no url")
        size = str(info.get("file_size", ""))
        return MediaLocation(
            url=info["url"],
            headers=auth_headers,
            content_type=str(info.get("mime_type") or ""),
            size_bytes=int(size) if size.isdigit() else None,
            sha256=stated_sha256(str(info.get("sha256") or media.sha256)),
        )

    return locate


class WhatsAppEvents:
    def __init__(self, phone_number_id: str, publisher: InboundPublisher, statuses: StatusReports, window: ReplyWindow,
                 media: MediaImporter):
        self.phone_number_id = phone_number_id
        self.publisher = publisher
        self.statuses = statuses
        self.window = window
        self.media = media

    async def handle(self, envelope: dict[str, Any]) -> None:
        for entry in envelope.get("entry") or ():
            for change in (entry.get("changes") or ()) if isinstance(entry, dict) else ():
                if not isinstance(change, dict) or change.get("field") != "messages":
                    continue
                value = change.get("value") or {}
                number = (value.get("metadata") or {}).get("phone_number_id")
                if str(number) != self.phone_number_id:
                    log.info("webhook for another phone number ignored", extra={"phone_number_id": number})
                    continue
                names = {
                    str(contact.get("wa_id")): str((contact.get("profile") or {}).get("name", ""))
                    for contact in value.get("contacts") or () if isinstance(contact, dict)
                }
                for message in value.get("messages") or ():
                    if isinstance(message, dict):
                        await self._message(message, names)
                for status in value.get("statuses") or ():
                    if isinstance(status, dict):
                        await self._status(status)

    async def _message(self, message: dict[str, Any], names: dict[str, str]) -> None:
        sender = message.get("from")
        if isinstance(sender, str) and not message.get("group_id"):
            # Only a message to the business number itself opens the sender's window; writing in
            # a group the number is in does not (WhatsApp fails a free-form reply with 131047).
            await self.window.opened(sender, _seconds(message.get("timestamp")))
        event, reason = message_event(message, names, self.phone_number_id)

        async def build():
            if event is None:
                return None, reason, None
            # Imported while the event is claimed: a redelivery meanwhile waits instead of importing too.
            received = event.inbound_message_received
            await self.media.import_into(received)
            for media in received.media:
                if media.caption and not received.content.text:
                    received.content.text = media.caption
            chat = received.external_chat_id
            return topics.INBOUND, inbound_key(channel_pb2.CHANNEL_WHATSAPP, self.phone_number_id, chat), event

        await self.publisher.publish_waiting("message", f"message:{message.get('id')}", build)

    async def _status(self, status: dict[str, Any]) -> None:
        wamid, name = status.get("id"), status.get("status")
        if not isinstance(wamid, str) or name not in STATUSES:
            log.info("status ignored", extra={"status": str(name)})
            return
        reason, code = failure_reason(status.get("errors")) if name == "failed" else ("", "")
        await self.statuses.report(wamid, STATUSES[name], at_seconds=_seconds(status.get("timestamp")), reason=reason, code=code)
