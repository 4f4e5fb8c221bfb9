"""What processing does to one file, after CompleteUpload verified its size and SHA-256:

1. content type from its first 64 KiB (a ranged GET), by libmagic: the detected type is the one
   clients and connectors use, whatever was declared;
2. malware scan of the whole content, streamed from S3 to the scanner (clamd): infected ->
   QUARANTINED, with the signature in failure_reason;
3. a thumbnail for PNG, JPEG, GIF and WebP images (by detected type; not above
   C4A_THUMBNAIL_MAX_SOURCE_BYTES nor C4A_THUMBNAIL_MAX_PIXELS): at most 320x320, stored beside
   the original as a CLEAN file of its own, same owner;
4. CLEAN.

Nothing here writes the database: the worker (processing_worker.py) records the Outcome.
Errors propagate: Unavailable (clamd or S3 unreachable) makes the worker try again later
without counting an attempt; anything else is a failed attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath

from chat4all.files.v1 import message_pb2

from services.files import content_type, thumbnails
from services.files.object_store import ObjectStore
from services.files.processing_queue import NewThumbnail
from services.files.scanning import Scanner
from services.files.settings import FileSettings
from services.files.store import FileRow

log = logging.getLogger("chat4all.files.processing")

# An image is spooled to a temporary file for Pillow; only this much of it stays in memory.
_SPOOL_MEMORY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    state: int  # CLEAN or QUARANTINED
    detected_content_type: str
    failure_reason: str = ""
    thumbnail: NewThumbnail | None = None  # stored already; recorded with the outcome


class FileProcessing:
    def __init__(self, objects: ObjectStore, scanner: Scanner, settings: FileSettings) -> None:
        self.objects = objects
        self.scanner = scanner
        self.settings = settings

    async def process(self, file: FileRow) -> Outcome:
        key = file.object_key
        detected = await content_type.detect(await self.objects.read_head(key, content_type.SNIFF_BYTES))
        verdict = await self.scanner.scan(file.size_bytes, lambda start, end: self.objects.chunks(key, start, end))
        if verdict.infected:
            return Outcome(message_pb2.FILE_STATE_QUARANTINED, detected, f"malware found: {verdict.signature}")
        return Outcome(message_pb2.FILE_STATE_CLEAN, detected, thumbnail=await self._thumbnail(file, detected))

    async def _thumbnail(self, file: FileRow, detected: str) -> NewThumbnail | None:
        if detected not in thumbnails.SOURCE_FORMATS:
            return None
        about = {"file_id": str(file.file_id), "content_type": detected, "size_bytes": file.size_bytes}
        if file.size_bytes > self.settings.thumbnail_max_source_bytes:
            log.info("no thumbnail: image above the size limit", extra=about)
            return None
        spooled = await self.objects.spool(file.object_key, _SPOOL_MEMORY_BYTES)
        try:
            made = await asyncio.to_thread(thumbnails.make_thumbnail, spooled, detected, self.settings.thumbnail_max_pixels)
        except thumbnails.NoThumbnail as reason:
            log.info("no thumbnail", extra={**about, "reason": str(reason)})
            return None
        finally:
            await asyncio.to_thread(spooled.close)
        thumbnail_id = uuid.uuid4()
        key = f"files/{thumbnail_id}"
        await self.objects.put(key, made.data, made.content_type)
        suffix = ".png" if made.content_type == "image/png" else ".jpg"
        return NewThumbnail(
            file_id=thumbnail_id, object_key=key, filename=f"{PurePosixPath(file.filename).stem}.thumbnail{suffix}",
            content_type=made.content_type, size_bytes=len(made.data), sha256=hashlib.sha256(made.data).hexdigest(),
            owner_user_id=file.owner_user_id,
        )
