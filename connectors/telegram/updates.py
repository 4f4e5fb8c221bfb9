"""Telegram updates become InboundMessageReceived events on chat4all.inbound.v1.

Both ways updates come in (webhook, polling) hand each update to
`TelegramUpdates`, which publishes it through the SDK's InboundPublisher at most
once per update_id (event key `update:<update_id>`): a redelivery is dropped, a
failure to publish raises so the update comes again (the webhook answers 500,
the poller does not advance its offset). A set of handled ids, rather than "at
or below the highest handled id", also survives an update delivered late or out
of order, and Telegram choosing new ids after a week without updates.

Order: Telegram keeps updates in update_id order and, with one webhook
connection (we ask for max_connections=1), delivers the next only after the
previous one was acknowledged; getUpdates batches are handled in update_id
order. Updates of a chat are keyed by the chat, so they stay in order in Kafka.

Media (a photo, at its largest size; a document, video, audio, voice note, video
note, sticker or animation) are imported into the file service before the
message is published (media_import.py): getFile(file_id) answers the file_path,
downloaded from /file/bot<token>/<file_path>. The cloud Bot API serves files up
to 20 MB: a bigger one is not even asked for. As on WhatsApp, the caption goes
with the file, and becomes the message text only when the file could not be
imported (the message then carries Telegram's file_id, and still says what the
sender wrote).
"""

from __future__ import annotations

import logging
import mimetypes
import time
from typing import Any

from chat4all.channel.v1 import channel_pb2
from chat4all.connector.v1 import message_pb2
from chat4all.conversations.v1 import message_pb2 as conversations_pb2
from chat4all.events.v1 import event_pb2

from connectors.sdk import metrics
from connectors.sdk.inbound import IGNORED, Build, InboundPublisher, event_id_for, inbound_key
from connectors.sdk.media_import import IMPORTS, Locate, MediaImporter, MediaLocation
from connectors.telegram.bot_api import BotApi
from services.messaging import topics

log = logging.getLogger("chat4all.telegram.updates")

# The update types the connector handles; Telegram sends only these (other types that
# arrive anyway, e.g. through a webhook someone else registered, are logged and dropped).
ALLOWED_UPDATES = ["message"]
KIND = "update"  # the inbound metric's kind label
# The cloud Bot API's downloads (getFile) stop at 20 MB; a local Bot API server has no limit.
DOWNLOAD_LIMIT_BYTES = 20 * 1024 * 1024
K = message_pb2.ContentKind
# A message's media field and its kind, in the order they are looked for: an animation comes
# with a `document` too (for clients that predate animations), so it is looked for first.
_MEDIA_FIELDS = (
    ("photo", K.CONTENT_KIND_IMAGE),
    ("animation", K.CONTENT_KIND_VIDEO),
    ("video", K.CONTENT_KIND_VIDEO),
    ("video_note", K.CONTENT_KIND_VIDEO),
    ("audio", K.CONTENT_KIND_AUDIO),
    ("voice", K.CONTENT_KIND_AUDIO),
    ("sticker", K.CONTENT_KIND_STICKER),
    ("document", K.CONTENT_KIND_DOCUMENT),
)


def display_name(user: dict[str, Any]) -> str:
    name = " ".join(part for part in (user.get("first_name"), user.get("last_name")) if part)
    if name:
        return name
    return f"@{user['username']}" if user.get("username") else ""


def message_media(message: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The kind and the file object (a photo's largest size) of a message's media, if any."""
    for field, kind in _MEDIA_FIELDS:
        value = message.get(field)
        if field == "photo" and isinstance(value, list):
            sizes = [size for size in value if isinstance(size, dict) and isinstance(size.get("file_id"), str)]
            if sizes:
                return kind, max(sizes, key=lambda size: (_number(size, "width") * _number(size, "height"),
                                                          _number(size, "file_size")))
        elif isinstance(value, dict) and isinstance(value.get("file_id"), str):
            return kind, value
    return None


def _number(fields: dict[str, Any], name: str) -> int:
    value = fields.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def inbound_event(update: dict[str, Any], bot_id: str, receive_time: float) -> tuple[event_pb2.Event | None, str]:
    """The event for an update, or None and why it is not one (logged by the publisher)."""
    message = update.get("message")
    if not isinstance(message, dict):
        kind = next((key for key in update if key != "update_id"), "empty")
        return None, f"{kind} updates are not handled"
    sender = message.get("from")
    chat = message.get("chat")
    if not isinstance(sender, dict) or not isinstance(chat, dict):
        return None, "a message without a sender or chat"
    if not all(isinstance(value, int) for value in (sender.get("id"), chat.get("id"), message.get("message_id"))):
        return None, "a message without its ids"
    if sender.get("is_bot"):
        # Bots (our own echoes included, and anonymous group admins) must not loop back in.
        return None, "a message from a bot"
    chat_type = chat.get("type")
    if chat_type not in ("private", "group", "supergroup"):
        return None, f"a message in a {chat_type} chat"
    text = message.get("text")
    media = message_media(message)
    if not isinstance(text, str) and media is None:
        return None, "a message without text or media (a location, a poll, a contact...)"

    # The same id as before the SDK ("telegram-update", bot, update_id): a re-publish keeps it.
    event = event_pb2.Event(event_id=event_id_for("telegram-update", bot_id, update["update_id"]))
    received = event.inbound_message_received
    received.channel = channel_pb2.CHANNEL_TELEGRAM
    received.account_id = bot_id
    received.external_sender_id = str(sender["id"])
    received.external_sender_display_name = display_name(sender)
    received.external_message_id = str(message["message_id"])
    received.external_chat_id = str(chat["id"])
    received.chat_type = (
        conversations_pb2.CONVERSATION_TYPE_DIRECT if chat_type == "private" else conversations_pb2.CONVERSATION_TYPE_GROUP
    )
    if isinstance(text, str):
        received.content.text = text
    if media is not None:
        kind, file = media
        caption = message.get("caption")
        received.media.add(
            kind=kind,
            media_id=file["file_id"],
            mime_type=str(file.get("mime_type") or ""),
            caption=caption if isinstance(caption, str) else "",
            filename=str(file.get("file_name") or ""),
        )
    received.platform_time.FromSeconds(int(message.get("date") or 0))
    received.receive_time.FromNanoseconds(int(receive_time * 1e9))
    event.occur_time.CopyFrom(received.platform_time)
    return event, ""


def stated_size(update: dict[str, Any]) -> int | None:
    """The file_size an update states for its message's media (Telegram may leave it out)."""
    message = update.get("message")
    media = message_media(message) if isinstance(message, dict) else None
    size = _number(media[1], "file_size") if media is not None else 0
    return size or None


def media_locator(api: BotApi) -> Locate:
    """Where Telegram serves an update's media: getFile(file_id) answers its file_path and size,
    downloaded from /file/bot<token>/<file_path> (the token is redacted from what is logged)."""

    async def locate(media: event_pb2.PlatformMedia) -> MediaLocation:
        if not media.media_id:
            raise ValueError("the media has no file_id")
        file = await api.get_file(media.media_id)
        path = file.get("file_path")
        if not isinstance(path, str) or not path:
            raise ValueError("getFile answered no file_path")
        size = _number(file, "file_size") or None
        if size is not None and size > DOWNLOAD_LIMIT_BYTES:
            raise ValueError(f"{size} bytes, above the Bot API's download limit of {DOWNLOAD_LIMIT_BYTES}")
        # Telegram states no type for photos, video notes and stickers; the path's extension does.
        return MediaLocation(url=api.file_url(path), content_type=mimetypes.guess_type(path)[0] or "",
                             size_bytes=size)

    return locate


def update_id_of(update: dict[str, Any]) -> int | None:
    value = update.get("update_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class TelegramUpdates:
    def __init__(self, bot_id: str, publisher: InboundPublisher, media: MediaImporter) -> None:
        self.bot_id = bot_id
        self.publisher = publisher
        self.media = media

    async def publish_once(self, update: dict[str, Any]) -> str:
        """published | duplicate | ignored | busy; raises when publishing failed (retry later)."""
        update_id = update_id_of(update)
        if update_id is None:
            return self._without_id()
        return await self.publisher.publish_once(KIND, f"update:{update_id}", self._build(update))

    async def publish_waiting(self, update: dict[str, Any]) -> str:
        """publish_once, waiting a little while another request handles the same update."""
        update_id = update_id_of(update)
        if update_id is None:
            return self._without_id()
        return await self.publisher.publish_waiting(KIND, f"update:{update_id}", self._build(update))

    def _build(self, update: dict[str, Any]) -> Build:
        async def build():
            event, reason = inbound_event(update, self.bot_id, time.time())
            if event is None:
                return None, reason, None
            # Imported while the update is claimed: a redelivery meanwhile waits instead of importing too.
            received = event.inbound_message_received
            await self._import_media(received, stated_size(update))
            for media in received.media:
                if media.caption and not received.content.text:
                    received.content.text = media.caption
            chat_id = received.external_chat_id
            return topics.INBOUND, inbound_key(channel_pb2.CHANNEL_TELEGRAM, self.bot_id, chat_id), event

        return build

    async def _import_media(self, received: event_pb2.InboundMessageReceived, size: int | None) -> None:
        if size is not None and size > DOWNLOAD_LIMIT_BYTES and received.media:
            # Telegram would refuse it (getFile: "file is too big"): not asked, kept as its reference.
            IMPORTS.labels(self.media.connector, "too_large").inc()
            log.warning("media not imported; published as the platform's reference: %d bytes, above the Bot API's "
                        "download limit of %d", size, DOWNLOAD_LIMIT_BYTES,
                        extra={"media": received.media[0].media_id, "outcome": "too_large"})
            return
        await self.media.import_into(received)

    def _without_id(self) -> str:
        log.warning("an update without an update_id was dropped")
        metrics.INBOUND.labels("telegram", KIND, IGNORED).inc()
        return IGNORED
