"""WhatsApp Cloud API sends: text, templates and media from one business number.

A request becomes one Graph API call per part: `POST /{version}/{phone_number_id}/messages`
with `{"messaging_product":"whatsapp","recipient_type":..,"to":..,"type":..,<type>:{..}}`.
Files go by link (WhatsApp fetches the download URL), or, in "upload" media
delivery, by the media id of an upload made once per file (media_uploads.py).
Refused before any call: a free-form message to a user whose 24-hour window is
closed (FAILED_PRECONDITION: send a template), a file over WhatsApp's limit for
its kind, an attachment without a URL to fetch it from.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from chat4all.channel.v1 import channel_pb2
from chat4all.connector.v1 import message_pb2, request_response_pb2
from chat4all.messaging.v1 import message_pb2 as messaging_pb2

from connectors.sdk.capabilities import rate_limit
from connectors.sdk.http import PlatformHttp
from connectors.sdk.meta import graph_error
from connectors.sdk.platform import Outgoing, SentPart, check_media_size
from connectors.sdk.rate_limits import Bucket, Limit
from connectors.sdk.reply_window import ReplyWindow
from connectors.whatsapp.media_uploads import MediaUploads
from connectors.whatsapp.settings import WhatsAppSettings
from services.runtime.errors import FailedPrecondition, InvalidArgument, Unavailable

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
_WA_ID = re.compile(r"[0-9]{5,20}")
_GROUP_ID = re.compile(r"[A-Za-z0-9_=.@-]{6,128}")
K = message_pb2.ContentKind
# Media size limits of the Cloud API, per kind.
MEDIA_LIMITS = {
    K.CONTENT_KIND_IMAGE: 5 * 1024 * 1024,
    K.CONTENT_KIND_AUDIO: 16 * 1024 * 1024,
    K.CONTENT_KIND_VIDEO: 16 * 1024 * 1024,
    K.CONTENT_KIND_DOCUMENT: 100 * 1024 * 1024,
    K.CONTENT_KIND_STICKER: 100 * 1024,
}
_TYPES = {
    K.CONTENT_KIND_IMAGE: "image",
    K.CONTENT_KIND_AUDIO: "audio",
    K.CONTENT_KIND_VIDEO: "video",
    K.CONTENT_KIND_DOCUMENT: "document",
    K.CONTENT_KIND_STICKER: "sticker",
}
_CAPTIONED = {K.CONTENT_KIND_IMAGE, K.CONTENT_KIND_VIDEO, K.CONTENT_KIND_DOCUMENT}
# The image types WhatsApp shows as images; other images go as documents, webp as stickers.
_IMAGE_TYPES = {"image/jpeg", "image/png"}


def media_kind(content_type: str) -> int:
    content_type = content_type.split(";", 1)[0].strip().lower()
    if content_type in _IMAGE_TYPES:
        return K.CONTENT_KIND_IMAGE
    if content_type == "image/webp":
        return K.CONTENT_KIND_STICKER
    if content_type.startswith("audio/"):
        return K.CONTENT_KIND_AUDIO
    if content_type.startswith("video/"):
        return K.CONTENT_KIND_VIDEO
    return K.CONTENT_KIND_DOCUMENT


class WhatsAppPlatform:
    name = "whatsapp"
    channel = channel_pb2.CHANNEL_WHATSAPP

    def __init__(self, settings: WhatsAppSettings, http: PlatformHttp) -> None:
        self.settings = settings
        self.http = http
        self.account_id = settings.whatsapp_phone_number_id
        self.base_url = f"{settings.whatsapp_api_url.rstrip('/')}/{settings.whatsapp_api_version}"
        self.auth_headers = {"Authorization": f"Bearer {settings.whatsapp_access_token}"}
        self.account_limit = Limit("account", settings.whatsapp_messages_per_second, settings.whatsapp_burst)
        self.recipient_limit = Limit("recipient", settings.whatsapp_recipient_per_second, settings.whatsapp_recipient_burst)
        self.window: ReplyWindow | None = None  # set once Redis is open (see service.py)
        self.uploads: MediaUploads | None = None  # set in "upload" media delivery

    # prepare ------------------------------------------------------------------------------

    async def prepare(self, request: request_response_pb2.SendMessageRequest) -> Outgoing:
        recipient = request.recipient
        address = recipient.external_id.strip().removeprefix("+")
        if _WA_ID.fullmatch(address):
            group = False
        elif _GROUP_ID.fullmatch(address):
            group = True
        else:
            raise InvalidArgument(f"recipient.external_id {address!r} is neither a WhatsApp number (wa_id) nor a group id")
        content = request.content
        parts = self._parts(content, request.sender_display_name)
        if not group and content.WhichOneof("body") != "template":
            await self._check_window(address)
        if self.uploads is not None and content.attachments:
            await self._by_media_id(parts[len(parts) - len(content.attachments):], content.attachments)
        envelope = {"messaging_product": "whatsapp", "recipient_type": "group" if group else "individual", "to": address}
        buckets = [Bucket("account", self.account_limit)]
        if not group:
            buckets.append(Bucket(f"recipient:{address}", self.recipient_limit))
        return Outgoing(target=address, buckets=buckets, parts=[{**envelope, **part} for part in parts])

    def _parts(self, content: messaging_pb2.MessageContent, sender_name: str) -> list[dict[str, Any]]:
        body = content.WhichOneof("body")
        if body == "template":
            if content.attachments:
                raise InvalidArgument("a template message cannot carry attachments; send them in a separate message")
            return [_template(content.template)]
        text = content.text if body == "text" else ""
        if text and sender_name:
            # The number speaks for many people here (a group, or a relay from another platform).
            text = f"{sender_name}: {text}"
        if not text.strip() and not content.attachments:
            raise InvalidArgument("the message has no text, template or attachment")
        media = [self._media(attachment) for attachment in content.attachments]
        first = media[0][1] if media else None
        if not text and sender_name and first is not None and media[0][0] in _CAPTIONED:
            caption = first.get("caption")
            first["caption"] = (f"{sender_name}: {caption}" if caption else sender_name)[:MAX_CAPTION_LENGTH]
        if text and first is not None and media[0][0] in _CAPTIONED and "caption" not in first and len(text) <= MAX_CAPTION_LENGTH:
            first["caption"] = text  # the text rides on the first file as its caption
            text = ""
        parts: list[dict[str, Any]] = []
        if text:
            if len(text) > MAX_TEXT_LENGTH:
                raise InvalidArgument(f"the text has {len(text)} characters; WhatsApp accepts at most {MAX_TEXT_LENGTH}")
            parts.append({"type": "text", "text": {"body": text, "preview_url": False}})
        parts.extend({"type": _TYPES[kind], _TYPES[kind]: fields} for kind, fields in media)
        return parts

    def _media(self, attachment: messaging_pb2.Attachment) -> tuple[int, dict[str, Any]]:
        kind = media_kind(attachment.content_type)
        limit = MEDIA_LIMITS[kind]
        check_media_size(attachment, limit, "WhatsApp", _TYPES[kind])
        if not attachment.download_url:
            raise FailedPrecondition(f"attachment {attachment.file_id} has no download URL for WhatsApp to fetch")
        fields: dict[str, Any] = {"link": attachment.download_url}
        if attachment.caption and kind in _CAPTIONED:
            fields["caption"] = attachment.caption[:MAX_CAPTION_LENGTH]
        if kind == K.CONTENT_KIND_DOCUMENT and attachment.filename:
            fields["filename"] = attachment.filename
        return kind, fields

    async def _by_media_id(self, media_parts: list[dict[str, Any]], attachments: Sequence[messaging_pb2.Attachment]) -> None:
        """Upload mode: each file's WhatsApp media id instead of its link (uploaded once per file)."""
        assert self.uploads is not None
        for part, attachment in zip(media_parts, attachments, strict=True):
            fields = part[part["type"]]
            del fields["link"]
            fields["id"] = await self.uploads.media_id(
                attachment.file_id, attachment.download_url, attachment.content_type, attachment.filename
            )

    async def _check_window(self, wa_id: str) -> None:
        assert self.window is not None
        if await self.window.closes_at(wa_id) is None:
            hours = self.settings.whatsapp_reply_window_seconds / 3600
            raise FailedPrecondition(
                f"{wa_id} has not written to this number in the last {hours:g} hours (the customer-service "
                "window is closed): only an approved template can reach them now"
            )

    # send -----------------------------------------------------------------------------------

    async def send(self, outgoing: Outgoing, part: dict[str, Any]) -> SentPart:
        url = f"{self.base_url}/{self.account_id}/messages"
        answer = await self.http.request("messages", "POST", url, json_body=part, headers=self.auth_headers)
        if answer.status != 200:
            raise graph_error("WhatsApp", f"send {part['type']}", answer)
        messages = answer.json_object().get("messages")
        if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict) or not messages[0].get("id"):
            # Accepted or not, we cannot tell; UNAVAILABLE retries, and the platform answers again.
            raise Unavailable("WhatsApp answered 200 without a message id")
        return SentPart(str(messages[0]["id"]), int(time.time()))

    # capabilities and health ----------------------------------------------------------------

    def capabilities(self) -> request_response_pb2.GetCapabilitiesResponse:
        s = self.settings
        response = request_response_pb2.GetCapabilitiesResponse(
            channel=self.channel,
            content_kinds=[K.CONTENT_KIND_TEXT, K.CONTENT_KIND_TEMPLATE, *MEDIA_LIMITS],
            media_limits=[message_pb2.MediaLimit(content_kind=kind, max_size_bytes=size) for kind, size in MEDIA_LIMITS.items()],
            rate_limits=[
                rate_limit(message_pb2.RATE_LIMIT_SCOPE_ACCOUNT, s.whatsapp_messages_per_second, "130429"),
                rate_limit(message_pb2.RATE_LIMIT_SCOPE_RECIPIENT, s.whatsapp_recipient_per_second, "131056"),
            ],
            reported_statuses=[
                messaging_pb2.DELIVERY_STATUS_SENT,
                messaging_pb2.DELIVERY_STATUS_DELIVERED,
                messaging_pb2.DELIVERY_STATUS_READ,
                messaging_pb2.DELIVERY_STATUS_FAILED,
            ],
            supports_groups=True,
            max_text_length=MAX_TEXT_LENGTH,
        )
        response.reply_window.FromSeconds(s.whatsapp_reply_window_seconds)
        return response

    async def probe(self, timeout_seconds: float) -> None:
        url = f"{self.base_url}/{self.account_id}"
        await self.http.request("phone_number", "GET", url, headers=self.auth_headers, timeout_seconds=timeout_seconds)


def _template(template: messaging_pb2.Template) -> dict[str, Any]:
    if not template.name or not template.language:
        raise InvalidArgument("a template needs its name and language")
    fields: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if template.parameters:
        fields["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": value} for value in template.parameters]}
        ]
    return {"type": "template", "template": fields}
