"""What Instagram's webhooks carry, handled: user messages become
InboundMessageReceived events, read receipts become READ for the message read.

An envelope (`object: "instagram"`) holds `entry[].messaging[]`; times are unix
milliseconds. Echoes (`message.is_echo`: what our account sent, including our
own sends) never loop back in. Each message is published once per mid and each
read once per mid; a failure raises, the webhook answers 500, Meta delivers again.

Attachments come as URLs on Meta's CDN (no token needed); they are imported into
the file service before the message is published (media_import.py), and one that
could not be imported stays as its URL.
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

from connectors.sdk import metrics
from connectors.sdk.inbound import InboundPublisher, event_id_for, inbound_key
from connectors.sdk.media_import import MediaImporter, MediaLocation
from connectors.sdk.reply_window import ReplyWindow
from connectors.sdk.statuses import StatusReports
from services.messaging import topics

log = logging.getLogger("chat4all.instagram.events")
K = message_pb2.ContentKind
_MEDIA_KINDS = {"image": K.CONTENT_KIND_IMAGE, "audio": K.CONTENT_KIND_AUDIO, "video": K.CONTENT_KIND_VIDEO, "file": K.CONTENT_KIND_DOCUMENT}


def _seconds(milliseconds: Any) -> float:
    return milliseconds / 1000 if isinstance(milliseconds, (int, float)) and milliseconds > 0 else time.time()


def message_event(item: dict[str, Any], account_id: str) -> tuple[event_pb2.Event | None, str]:
    """The event for one `messaging` item carrying a user's message, or None and why not."""
    message, sender = item["message"], (item.get("sender") or {}).get("id")
    mid = message.get("mid")
    if not isinstance(mid, str) or not sender:
        return None, "a message without its mid or sender"
    event = event_pb2.Event(event_id=event_id_for("instagram-message", account_id, mid))
    received = event.inbound_message_received
    received.channel = channel_pb2.CHANNEL_INSTAGRAM
    received.account_id = account_id
    received.external_sender_id = str(sender)
    received.external_message_id = mid
    received.external_chat_id = str(sender)  # Instagram DMs are one-to-one
    received.chat_type = conversations_pb2.CONVERSATION_TYPE_DIRECT
    if isinstance(message.get("text"), str):
        received.content.text = message["text"]
    for attachment in message.get("attachments") or ():
        if isinstance(attachment, dict) and attachment.get("type") in _MEDIA_KINDS:
            received.media.add(kind=_MEDIA_KINDS[attachment["type"]], url=str((attachment.get("payload") or {}).get("url", "")))
    if not received.content.text and not received.media:
        return None, "a message with neither text nor a supported attachment"
    received.platform_time.FromNanoseconds(int(_seconds(item.get("timestamp")) * 1e9))
    received.receive_time.FromNanoseconds(time.time_ns())
    event.occur_time.CopyFrom(received.platform_time)
    return event, ""


async def locate_attachment(media: event_pb2.PlatformMedia) -> MediaLocation:
    """An attachment's URL is where Instagram serves it (signed, for a while): no token is sent."""
    return MediaLocation(url=media.url)


class InstagramEvents:
    def __init__(self, account_id: str, publisher: InboundPublisher, statuses: StatusReports, window: ReplyWindow,
                 media: MediaImporter):
        self.account_id = account_id
        self.publisher = publisher
        self.statuses = statuses
        self.window = window
        self.media = media

    async def handle(self, envelope: dict[str, Any]) -> None:
        for entry in envelope.get("entry") or ():
            if not isinstance(entry, dict):
                continue
            if str(entry.get("id")) != self.account_id:
                log.info("webhook for another account ignored", extra={"account": str(entry.get("id"))})
                continue
            for item in entry.get("messaging") or ():
                if not isinstance(item, dict):
                    continue
                if isinstance(item.get("message"), dict):
                    await self._message(item)
                elif isinstance(item.get("read"), dict):
                    await self._read(item)

    async def _message(self, item: dict[str, Any]) -> None:
        if item["message"].get("is_echo"):
            # What our account sent (our own sends among it): already in Chat4All.
            metrics.INBOUND.labels("instagram", "echo", "ignored").inc()
            return
        sender = str((item.get("sender") or {}).get("id", ""))
        if sender:
            await self.window.opened(sender, _seconds(item.get("timestamp")))
        event, reason = message_event(item, self.account_id)

        async def build():
            if event is None:
                return None, reason, None
            # Imported while the event is claimed: a redelivery meanwhile waits instead of importing too.
            await self.media.import_into(event.inbound_message_received)
            return topics.INBOUND, inbound_key(channel_pb2.CHANNEL_INSTAGRAM, self.account_id, sender), event

        await self.publisher.publish_waiting("message", f"message:{item['message'].get('mid')}", build)

    async def _read(self, item: dict[str, Any]) -> None:
        mid = item["read"].get("mid")
        if not isinstance(mid, str):
            return
        await self.statuses.report(mid, messaging_pb2.DELIVERY_STATUS_READ, at_seconds=_seconds(item.get("timestamp")))
