"""Attachments as Telegram messages: the Bot API method for each file, Telegram's size
limits, and the two ways a file reaches Telegram (C4A_TELEGRAM_MEDIA_DELIVERY).

The method follows the content type the file service detected from the bytes:

  image/jpeg, image/png, image/webp    sendPhoto (shown inline; Telegram recompresses it)
  video/mp4                            sendVideo (what Telegram clients play; other videos
                                       "may be sent as Document", says the Bot API)
  audio/mpeg, audio/mp4 (MP3, M4A)     sendAudio (the formats it takes)
  anything else                        sendDocument (a GIF sent so is shown animated)

Limits of the cloud Bot API: by upload, photos 10 MB and other files 50 MB; by URL,
photos 5 MB and other files 20 MB. A file above its limit is refused before any call
(MediaTooLarge: FAILED_PRECONDITION with the MEDIA_TOO_LARGE reason), on which the router
fails that delivery without a dead letter (a retry cannot make the file smaller).

"upload" (the default): the file is streamed from its presigned download URL into a
multipart/form-data request, a chunk at a time (connectors/sdk/storage_downloads.py).
"url": the download URL is the method's photo/video/audio/document parameter, and
Telegram's servers fetch it; they must be able to reach our storage.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import aiohttp
from chat4all.connector.v1 import message_pb2
from chat4all.messaging.v1 import message_pb2 as messaging_pb2

from connectors.sdk.platform import MediaTooLarge
from connectors.sdk.storage_downloads import StorageDownloads
from connectors.telegram.bot_api import BotApi
from services.runtime.errors import FailedPrecondition, InvalidArgument, Unavailable

MiB = 1024 * 1024
MAX_CAPTION_LENGTH = 1024
K = message_pb2.ContentKind


@dataclasses.dataclass(frozen=True)
class MediaKind:
    method: str  # the Bot API method
    field: str  # its file parameter, and the name of the kind in error texts
    content_kind: int  # as GetCapabilities names it
    plural: str


PHOTO = MediaKind("sendPhoto", "photo", K.CONTENT_KIND_IMAGE, "photos")
VIDEO = MediaKind("sendVideo", "video", K.CONTENT_KIND_VIDEO, "videos")
AUDIO = MediaKind("sendAudio", "audio", K.CONTENT_KIND_AUDIO, "audio files")
DOCUMENT = MediaKind("sendDocument", "document", K.CONTENT_KIND_DOCUMENT, "documents")

# Largest file per kind, by delivery mode (Telegram's cloud Bot API limits).
LIMITS = {
    "upload": {PHOTO: 10 * MiB, VIDEO: 50 * MiB, AUDIO: 50 * MiB, DOCUMENT: 50 * MiB},
    "url": {PHOTO: 5 * MiB, VIDEO: 20 * MiB, AUDIO: 20 * MiB, DOCUMENT: 20 * MiB},
}
_BY = {"upload": "upload", "url": "URL"}
_KINDS = {
    **dict.fromkeys(("image/jpeg", "image/png", "image/webp"), PHOTO),
    "video/mp4": VIDEO,
    **dict.fromkeys(("audio/mpeg", "audio/mp3", "audio/mp4", "audio/m4a", "audio/x-m4a"), AUDIO),
}


def media_kind(content_type: str) -> MediaKind:
    return _KINDS.get(content_type.split(";", 1)[0].strip().lower(), DOCUMENT)


def media_limits(delivery: str) -> list[message_pb2.MediaLimit]:
    return [message_pb2.MediaLimit(content_kind=kind.content_kind, max_size_bytes=size)
            for kind, size in LIMITS[delivery].items()]


@dataclasses.dataclass(frozen=True)
class MediaMessage:
    """One attachment as one Telegram message."""

    chat_id: int | str
    kind: MediaKind
    download_url: str
    caption: str
    filename: str  # as the recipient sees it (upload mode; by URL Telegram names it from the URL)
    content_type: str

    def by_url(self) -> dict[str, Any]:
        params: dict[str, Any] = {"chat_id": self.chat_id, self.kind.field: self.download_url}
        if self.caption:
            params["caption"] = self.caption
        return params


def media_message(chat_id: int | str, attachment: messaging_pb2.Attachment, caption: str,
                  delivery: str) -> MediaMessage:
    """The message for `attachment`, or the reason Telegram would refuse it (before any call)."""
    kind = media_kind(attachment.content_type)
    name = attachment.filename or attachment.file_id
    limit = LIMITS[delivery][kind]
    if attachment.size_bytes > limit:
        raise MediaTooLarge(
            f"{kind.field} {name} is {attachment.size_bytes} bytes; Telegram accepts {kind.plural} up to"
            f" {limit // MiB} MB by {_BY[delivery]}"
        )
    if not attachment.download_url:
        raise FailedPrecondition(f"attachment {attachment.file_id} has no download URL")
    if len(caption) > MAX_CAPTION_LENGTH:
        raise InvalidArgument(
            f"the caption of {name} has {len(caption)} characters; Telegram accepts at most {MAX_CAPTION_LENGTH}"
        )
    return MediaMessage(chat_id, kind, attachment.download_url, caption, name, attachment.content_type)


class MediaUploads:
    """Upload mode: each file goes from storage into its multipart send, never whole in memory."""

    def __init__(self, api: BotApi, downloads: StorageDownloads, *, timeout_seconds: float) -> None:
        self.api = api
        self.downloads = downloads
        self.timeout_seconds = timeout_seconds

    async def send(self, message: MediaMessage) -> Any:
        kind = message.kind
        try:
            # One deadline for the download and the upload: the send lock must outlast them.
            async with asyncio.timeout(self.timeout_seconds):
                async with self.downloads.multipart_file(
                    message.download_url, name=kind.field, filename=message.filename,
                    content_type=message.content_type, what=message.filename,
                ) as file:
                    with aiohttp.MultipartWriter("form-data") as form:
                        _add_field(form, "chat_id", str(message.chat_id))
                        if message.caption:
                            _add_field(form, "caption", message.caption)
                        form.append_payload(file)
                        return await self.api.upload(kind.method, form, timeout_seconds=self.timeout_seconds)
        except TimeoutError:
            raise Unavailable(
                f"Telegram {kind.method} of {message.filename} took over {self.timeout_seconds:g}s"
            ) from None


def _add_field(form: aiohttp.MultipartWriter, name: str, value: str) -> None:
    form.append(value).set_content_disposition("form-data", name=name)
