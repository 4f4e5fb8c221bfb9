"""Telegram as a connector SDK platform: text and files sent as the bot.

A recipient is a chat id (negative for groups and supergroups) or a
@channelusername. A message becomes one Telegram message per part, in order:
its text (sendMessage), then one per attachment (sendPhoto, sendVideo,
sendAudio or sendDocument with the attachment's caption; see media.py for the
methods, limits and the two delivery modes). The sender's name goes before the
text ("Ana: hi"), or, with no text, before the first file's caption. The answer
lists every message id in send order; a send that failed half-way resumes
after the messages that went out (the SDK's send ledger).

Refused before any call: templates (Telegram has none), empty or over-long text
or captions, a file above Telegram's limit for its kind and delivery mode, an
attachment without a download URL. Each message counts against the bot's limit
and its chat's (a private chat's, or a group's: a @username is a channel or
supergroup), enforced across replicas by the SDK.
"""

from __future__ import annotations

import dataclasses
import re

from chat4all.channel.v1 import channel_pb2
from chat4all.connector.v1 import message_pb2, request_response_pb2
from chat4all.messaging.v1 import message_pb2 as messaging_pb2

from connectors.sdk.capabilities import rate_limit
from connectors.sdk.platform import Outgoing, SentPart
from connectors.sdk.rate_limits import Bucket, Limit
from connectors.telegram.bot_api import BotApi
from connectors.telegram.media import LIMITS, MediaMessage, MediaUploads, media_limits, media_message
from connectors.telegram.settings import TelegramSettings
from services.runtime.errors import InvalidArgument, Unavailable

MAX_TEXT_LENGTH = 4096
_CHAT_ID = re.compile(r"-?[0-9]{1,20}")
_CHANNEL_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")
# Telegram's throttling answer, as GetCapabilities names it.
_THROTTLE_CODE = "429"


def is_group_chat(chat_id: int | str) -> bool:
    """Groups and supergroups have negative ids; @username targets are channels or supergroups."""
    return isinstance(chat_id, str) or chat_id < 0


def recipient_chat(recipient: messaging_pb2.Recipient) -> int | str:
    address = recipient.external_id.strip()
    if _CHAT_ID.fullmatch(address):
        return int(address)
    if _CHANNEL_USERNAME.fullmatch(address):
        return address
    raise InvalidArgument(f"recipient.external_id {address!r} is not a Telegram chat id or @channelusername")


@dataclasses.dataclass(frozen=True)
class TextMessage:
    chat_id: int | str
    text: str


def message_parts(chat_id: int | str, content: messaging_pb2.MessageContent, sender_name: str,
                  delivery: str) -> list[TextMessage | MediaMessage]:
    body = content.WhichOneof("body")
    if body == "template":
        # Templates exist for WhatsApp's 24 h window; Telegram has no window and no templates,
        # and rendering a template's name and parameters would send the user gibberish.
        raise InvalidArgument("Telegram has no message templates (and no reply window): send text")
    text = content.text if body == "text" and content.text.strip() else ""
    if not text and not content.attachments:
        raise InvalidArgument("the message has no text or attachment")
    parts: list[TextMessage | MediaMessage] = []
    if text:
        if sender_name:
            # The bot speaks for many people here (a group, or a relay from another platform).
            text = f"{sender_name}: {text}"
        if len(text) > MAX_TEXT_LENGTH:
            raise InvalidArgument(f"the text has {len(text)} characters; Telegram accepts at most {MAX_TEXT_LENGTH}")
        parts.append(TextMessage(chat_id, text))
    for attachment in content.attachments:
        caption = attachment.caption
        if sender_name and not parts:
            # No text to carry the name: the first file's caption does.
            caption = f"{sender_name}: {caption}" if caption else sender_name
        parts.append(media_message(chat_id, attachment, caption, delivery))
    return parts


class TelegramPlatform:
    name = "telegram"
    channel = channel_pb2.CHANNEL_TELEGRAM

    def __init__(self, settings: TelegramSettings, api: BotApi) -> None:
        self.settings = settings
        self.api = api
        self.http = api.http
        self.account_id = settings.bot_id
        self.delivery = settings.telegram_media_delivery
        self.media_timeout_seconds = settings.media_send_timeout_seconds
        self.uploads: MediaUploads | None = None  # set in "upload" media delivery (see service.py)
        self.bot_limit = Limit("bot", settings.telegram_bot_per_second, settings.telegram_bot_burst)
        self.private_chat_limit = Limit(
            "private_chat", settings.telegram_private_chat_per_second, settings.telegram_private_chat_burst
        )
        self.group_limit = Limit("group", settings.telegram_group_per_minute / 60, settings.telegram_group_burst)

    async def prepare(self, request: request_response_pb2.SendMessageRequest) -> Outgoing:
        chat_id = recipient_chat(request.recipient)
        parts = message_parts(chat_id, request.content, request.sender_display_name, self.delivery)
        chat_limit = self.group_limit if is_group_chat(chat_id) else self.private_chat_limit
        # The bot's bucket first: a 429 (which names no limit) holds it.
        buckets = [Bucket("bot", self.bot_limit), Bucket(f"chat:{chat_id}", chat_limit)]
        # Telegram limits messages, and a file is a message of its own.
        return Outgoing(target=str(chat_id), buckets=buckets, parts=parts, each_part_counts=True)

    async def send(self, outgoing: Outgoing, part: TextMessage | MediaMessage) -> SentPart:
        if isinstance(part, TextMessage):
            method = "sendMessage"
            result = await self.api.send_message(part.chat_id, part.text)
        else:
            method = part.kind.method
            if self.uploads is not None:
                result = await self.uploads.send(part)
            else:
                result = await self.api.call(method, part.by_url(), timeout_seconds=self.media_timeout_seconds)
        if not isinstance(result, dict) or not isinstance(result.get("message_id"), int):
            # Sent or not, we cannot tell; UNAVAILABLE retries, and Telegram answers again.
            raise Unavailable(f"Telegram answered {method} without a message_id")
        return SentPart(str(result["message_id"]), int(result.get("date") or 0))

    def capabilities(self) -> request_response_pb2.GetCapabilitiesResponse:
        s = self.settings
        return request_response_pb2.GetCapabilitiesResponse(
            channel=self.channel,
            content_kinds=[message_pb2.CONTENT_KIND_TEXT, *(kind.content_kind for kind in LIMITS[self.delivery])],
            # For the delivery mode in use: by URL Telegram takes smaller files than by upload.
            media_limits=media_limits(self.delivery),
            rate_limits=[
                rate_limit(message_pb2.RATE_LIMIT_SCOPE_RECIPIENT, s.telegram_private_chat_per_second, _THROTTLE_CODE),
                rate_limit(message_pb2.RATE_LIMIT_SCOPE_GROUP, s.telegram_group_per_minute, _THROTTLE_CODE, 60),
                rate_limit(message_pb2.RATE_LIMIT_SCOPE_ACCOUNT, s.telegram_bot_per_second, _THROTTLE_CODE),
            ],
            # Telegram reports nothing after SENT: no delivery or read receipts for bots.
            reported_statuses=[],
            supports_groups=True,
            max_text_length=MAX_TEXT_LENGTH,
        )

    async def probe(self, timeout_seconds: float) -> None:
        await self.api.get_me(timeout_seconds)
