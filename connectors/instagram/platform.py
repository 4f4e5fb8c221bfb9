"""Instagram Messaging sends: text and attachments (by URL) as one professional account.

Each part is one `POST /{version}/{account_id}/messages` with
`{"recipient":{"id":IGSID},"message":{"text":..}}` or
`{"message":{"attachment":{"type":"image|audio|video|file","payload":{"url":..}}}}`;
Instagram has no captions, so text and files are separate messages (text first).
Refused before any call: a reply outside the 24-hour window, a file over
Instagram's limit, an attachment without a URL, a template (WhatsApp only).
A rate error (613) on an audio or video send holds only the media limit: Instagram
limits those calls separately, so text, images and files keep going.
"""

from __future__ import annotations

import re
import time
from typing import Any

from chat4all.channel.v1 import channel_pb2
from chat4all.connector.v1 import message_pb2, request_response_pb2
from chat4all.messaging.v1 import message_pb2 as messaging_pb2

from connectors.instagram.settings import InstagramSettings
from connectors.sdk.capabilities import rate_limit
from connectors.sdk.http import PlatformHttp
from connectors.sdk.meta import graph_error
from connectors.sdk.platform import Outgoing, PlatformThrottled, SentPart, check_media_size
from connectors.sdk.rate_limits import Bucket, Limit
from connectors.sdk.reply_window import ReplyWindow
from services.runtime.errors import FailedPrecondition, InvalidArgument, Unavailable

MAX_TEXT_LENGTH = 1000
_IGSID = re.compile(r"[0-9]{5,32}")
K = message_pb2.ContentKind
MEDIA_LIMITS = {
    K.CONTENT_KIND_IMAGE: 8 * 1024 * 1024,
    K.CONTENT_KIND_AUDIO: 25 * 1024 * 1024,
    K.CONTENT_KIND_VIDEO: 25 * 1024 * 1024,
    K.CONTENT_KIND_DOCUMENT: 25 * 1024 * 1024,
}
_TYPES = {K.CONTENT_KIND_IMAGE: "image", K.CONTENT_KIND_AUDIO: "audio", K.CONTENT_KIND_VIDEO: "video", K.CONTENT_KIND_DOCUMENT: "file"}
# Audio and video count against the account's much lower media limit.
_SLOW_KINDS = {K.CONTENT_KIND_AUDIO, K.CONTENT_KIND_VIDEO}
_SLOW_TYPES = {_TYPES[kind] for kind in _SLOW_KINDS}


def media_kind(content_type: str) -> int:
    main = content_type.split(";", 1)[0].strip().lower().split("/", 1)[0]
    return {"image": K.CONTENT_KIND_IMAGE, "audio": K.CONTENT_KIND_AUDIO, "video": K.CONTENT_KIND_VIDEO}.get(
        main, K.CONTENT_KIND_DOCUMENT
    )


class InstagramPlatform:
    name = "instagram"
    channel = channel_pb2.CHANNEL_INSTAGRAM

    def __init__(self, settings: InstagramSettings, http: PlatformHttp) -> None:
        self.settings = settings
        self.http = http
        self.account_id = settings.instagram_account_id
        self._url = f"{settings.instagram_api_url.rstrip('/')}/{settings.instagram_api_version}/{self.account_id}/messages"
        self._auth = {"Authorization": f"Bearer {settings.instagram_access_token}"}
        self.text_limit = Limit("text", settings.instagram_text_per_second, settings.instagram_text_burst)
        self.media_limit = Limit("media", settings.instagram_media_per_second, settings.instagram_media_burst)
        self.window: ReplyWindow | None = None  # set once Redis is open (see service.py)

    async def prepare(self, request: request_response_pb2.SendMessageRequest) -> Outgoing:
        igsid = request.recipient.external_id.strip()
        if not _IGSID.fullmatch(igsid):
            raise InvalidArgument(f"recipient.external_id {igsid!r} is not an Instagram-scoped user id (IGSID)")
        content = request.content
        body = content.WhichOneof("body")
        if body == "template":
            raise InvalidArgument("Instagram has no message templates: send text")
        parts: list[dict[str, Any]] = []
        if body == "text" and content.text.strip():
            # The account speaks for many people here (a group, or a relay from another platform).
            text = f"{request.sender_display_name}: {content.text}" if request.sender_display_name else content.text
            if len(text) > MAX_TEXT_LENGTH:
                raise InvalidArgument(f"the text has {len(text)} characters; Instagram accepts at most {MAX_TEXT_LENGTH}")
            parts.append({"text": text})
        kinds = []
        for attachment in content.attachments:
            kind = self._check_attachment(attachment)
            kinds.append(kind)
            parts.append({"attachment": {"type": _TYPES[kind], "payload": {"url": attachment.download_url}}})
        if not parts:
            raise InvalidArgument("the message has no text or attachment")
        await self._check_window(igsid)
        buckets = [Bucket("text", self.text_limit)]
        if any(kind in _SLOW_KINDS for kind in kinds):
            buckets.append(Bucket("media", self.media_limit))
        return Outgoing(target=igsid, buckets=buckets, parts=[{"recipient": {"id": igsid}, "message": part} for part in parts])

    def _check_attachment(self, attachment: messaging_pb2.Attachment) -> int:
        kind = media_kind(attachment.content_type)
        limit = MEDIA_LIMITS[kind]
        check_media_size(attachment, limit, "Instagram", _TYPES[kind])
        if not attachment.download_url:
            raise FailedPrecondition(f"attachment {attachment.file_id} has no download URL for Instagram to fetch")
        return kind

    async def _check_window(self, igsid: str) -> None:
        assert self.window is not None
        if await self.window.closes_at(igsid) is None:
            hours = self.settings.instagram_reply_window_seconds / 3600
            raise FailedPrecondition(
                f"{igsid} has not written to this account in the last {hours:g} hours: Instagram accepts no reply now"
            )

    async def send(self, outgoing: Outgoing, part: dict[str, Any]) -> SentPart:
        attachment = part["message"].get("attachment")
        kind = "attachment" if attachment else "text"
        answer = await self.http.request("messages", "POST", self._url, json_body=part, headers=self._auth)
        if answer.status != 200:
            error = graph_error("Instagram", f"send {kind}", answer)
            if isinstance(error, PlatformThrottled) and attachment and attachment["type"] in _SLOW_TYPES:
                # Audio and video have their own, much lower, call limit: hold that one, not the
                # account's text limit (text, images and files still go).
                error.scope = self.media_limit.scope
            raise error
        message_id = answer.json_object().get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise Unavailable("Instagram answered 200 without a message_id")
        return SentPart(message_id, int(time.time()))

    def capabilities(self) -> request_response_pb2.GetCapabilitiesResponse:
        s = self.settings
        response = request_response_pb2.GetCapabilitiesResponse(
            channel=self.channel,
            content_kinds=[K.CONTENT_KIND_TEXT, *MEDIA_LIMITS],
            media_limits=[message_pb2.MediaLimit(content_kind=kind, max_size_bytes=size) for kind, size in MEDIA_LIMITS.items()],
            rate_limits=[
                rate_limit(message_pb2.RATE_LIMIT_SCOPE_ACCOUNT, s.instagram_text_per_second, "613"),
                rate_limit(message_pb2.RATE_LIMIT_SCOPE_ACCOUNT, s.instagram_media_per_second, "613"),
            ],
            reported_statuses=[messaging_pb2.DELIVERY_STATUS_SENT, messaging_pb2.DELIVERY_STATUS_READ],
            supports_groups=False,
            max_text_length=MAX_TEXT_LENGTH,
        )
        response.rate_limits[1].content_kinds.extend(sorted(_SLOW_KINDS))
        response.reply_window.FromSeconds(s.instagram_reply_window_seconds)
        return response

    async def probe(self, timeout_seconds: float) -> None:
        url = self._url.rsplit("/", 1)[0]
        await self.http.request("account", "GET", url, headers=self._auth, timeout_seconds=timeout_seconds)
