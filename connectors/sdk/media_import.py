"""Platform media into the file service, before the inbound message carrying them is published.

One import: ask the platform where the file is (`Locate`: WhatsApp's GET /{media_id},
Instagram's attachment URL as is, Telegram's getFile then /file/bot<token>/<file_path>), download
it into a spool file on disk while hashing it (memory stays flat whatever the size; above
2 GiB refused), then CreateUpload, PUT the parts to their presigned URLs from the spool file (a
few at once) and CompleteUpload.

Both request ids derive from (channel, account, the platform's media id or URL, SHA-256), so a
redelivered webhook, or a retry after a crash, gets the same upload back; GetFile says whether
it is complete already, and then nothing is uploaded again.

`MediaImporter.import_into` imports every PlatformMedia of an InboundMessageReceived at once:
each one imported becomes an attachment (in the order sent) and leaves `media`; one that could
not be imported stays there as the platform's reference, so the message is published anyway
and nothing the sender sent is lost.

Telegram plugs in with its own `Locate`: getFile(file_id) -> file_path, then
MediaLocation(url=f"{base}/file/bot{token}/{file_path}"); the token in that URL is redacted from
every log line and error by the connector's PlatformHttp.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import logging
import mimetypes
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import aiohttp
import grpc
from chat4all.connector.v1 import message_pb2 as connector_pb2
from chat4all.events.v1 import event_pb2
from chat4all.files.v1 import message_pb2 as file_pb2, request_response_pb2 as file_requests, service_pb2_grpc as file_grpc
from prometheus_client import Counter

from connectors.sdk import metrics
from connectors.sdk.inbound import event_id_for
from services.runtime.tenancy import client_metadata

log = logging.getLogger("chat4all.connector.media")

MAX_FILE_BYTES = 2 * 1024**3  # the file service's limit
_CHUNK_BYTES = 1024 * 1024
_PARTS_AT_ONCE = 3
_PART_ATTEMPTS = 2
# A couple of quick tries: the webhook is waiting, and a failed import still publishes.
_FILES_ATTEMPTS = 3
_FILES_BACKOFF_SECONDS = 0.2
# The timeout of proto/chat4all/files/v1/files_grpc_service_config.json. CompleteUpload reads
# the whole file back from S3 to check it, so it gets the rest of the import's time instead.
_FILES_CALL_SECONDS = 5.0
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_DONE_STATES = (file_pb2.FILE_STATE_PROCESSING, file_pb2.FILE_STATE_CLEAN, file_pb2.FILE_STATE_QUARANTINED)

IMPORTS = Counter(
    "chat4all_connector_media_imports_total",
    "Inbound media by outcome: imported, reused (the file service had it already), download_failed, "
    "too_large, upload_failed, timed_out, failed (anything else). All but imported and reused are "
    "published as the platform's reference.",
    ["connector", "outcome"],
)


class ImportFailed(Exception):
    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclasses.dataclass(frozen=True)
class MediaLocation:
    """Where the platform serves one media file, and what it states about it."""

    url: str
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    content_type: str = ""
    size_bytes: int | None = None  # refused before downloading when above the limit
    sha256: bytes | None = None  # the digest the platform states: the download must match it


# How a platform finds one of its media (raises when it cannot: gone, refused, unreachable).
Locate = Callable[[event_pb2.PlatformMedia], Awaitable[MediaLocation]]


@dataclasses.dataclass(frozen=True)
class ImportedFile:
    file_id: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str  # hex


@dataclasses.dataclass(frozen=True)
class _Spooled:
    path: str
    size_bytes: int
    sha256: str  # hex
    content_type: str  # the download's Content-Type header


def stated_sha256(value: str) -> bytes | None:
    """A digest as Meta states it (base64); None when absent or malformed."""
    try:
        digest = base64.b64decode(value, validate=True) if value else b""
    except (binascii.Error, ValueError):
        return None
    return digest if len(digest) == 32 else None


class MediaImporter:
    def __init__(
        self,
        connector: str,
        channel: int,
        account_id: str,
        files: file_grpc.FileServiceStub,
        locate: Locate,
        *,
        budget_seconds: float,
        connect_timeout_seconds: float,
        read_timeout_seconds: float,
        spool_dir: str = "",
        redact: Callable[[str], str] = lambda text: text,
        owner_client_id: str = "",
    ) -> None:
        self.connector = connector
        # The files belong to the client that owns the platform accounts (as the users and
        # conversations the router makes for inbound messages do); none: unowned, internal.
        self._metadata = client_metadata(owner_client_id or None)
        self.channel = channel
        self.account_id = account_id
        self.files = files
        self.locate = locate
        self.budget_seconds = budget_seconds
        self.spool_dir = spool_dir or None
        self.redact = redact
        # Downloads and part uploads: long transfers, so no total timeout (the budget bounds
        # them), only connect and between-reads ones.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_seconds, sock_read=read_timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> MediaImporter:
        # Our own session: a platform's media CDN and S3 are not its API (no platform metrics or
        # pool sharing); proxies from the environment would see the tokens.
        self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        return self

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def import_into(self, received: event_pb2.InboundMessageReceived) -> None:
        """Imports every PlatformMedia of `received` at once, within the budget: each imported one
        becomes an attachment with its caption and leaves `media`; the others stay there."""
        if not received.media:
            return
        results = await asyncio.gather(*(self._try_import(media) for media in received.media))
        for media, imported in zip(received.media, results):
            if imported is not None:
                received.content.attachments.add(file_id=imported.file_id, caption=media.caption, filename=imported.filename)
        for index in reversed(range(len(results))):
            if results[index] is not None:
                del received.media[index]

    async def _try_import(self, media: event_pb2.PlatformMedia) -> ImportedFile | None:
        reference = media.media_id or media.url
        try:
            async with asyncio.timeout(self.budget_seconds):
                imported, outcome = await self.import_one(media)
        except ImportFailed as failed:
            outcome, reason = failed.outcome, str(failed)
        except TimeoutError:
            outcome, reason = "timed_out", f"not imported within {self.budget_seconds} s"
        except Exception as error:  # the disk, or a bug: the message is still published
            log.exception("media import broke")
            outcome, reason = "failed", f"{type(error).__name__}: {error}"
        else:
            IMPORTS.labels(self.connector, outcome).inc()
            log.info("media imported", extra={"media": self.redact(reference), "file_id": imported.file_id, "outcome": outcome})
            return imported
        IMPORTS.labels(self.connector, outcome).inc()
        log.warning("media not imported; published as the platform's reference: %s", self.redact(reason),
                    extra={"media": self.redact(reference), "outcome": outcome})
        return None

    async def import_one(self, media: event_pb2.PlatformMedia) -> tuple[ImportedFile, str]:
        """The file in the file service, and "imported" or "reused"; raises ImportFailed."""
        try:
            location = await self.locate(media)
        except Exception as error:
            raise ImportFailed("download_failed", f"cannot locate it: {error}") from None
        if location.size_bytes is not None and location.size_bytes > MAX_FILE_BYTES:
            raise ImportFailed("too_large", f"{location.size_bytes} bytes, above {MAX_FILE_BYTES}")
        spooled = await self._download(location)
        try:
            content_type = media.mime_type or location.content_type or spooled.content_type or "application/octet-stream"
            filename = media.filename or _default_filename(media, content_type)
            return await self._store(media.media_id or media.url, spooled, filename, content_type)
        finally:
            await asyncio.to_thread(os.unlink, spooled.path)

    # Download -----------------------------------------------------------------------------

    async def _download(self, location: MediaLocation) -> _Spooled:
        fd, path = await asyncio.to_thread(tempfile.mkstemp, prefix="c4a-media-", dir=self.spool_dir)
        try:
            with open(fd, "wb") as spool:
                spooled = await self._stream_into(location, spool, path)
                await asyncio.to_thread(spool.flush)  # so closing writes nothing on the event loop
        except BaseException:
            await asyncio.to_thread(os.unlink, path)
            raise
        if location.sha256 is not None and location.sha256.hex() != spooled.sha256:
            await asyncio.to_thread(os.unlink, path)
            raise ImportFailed("download_failed", "the download does not match the SHA-256 the platform states")
        return spooled

    async def _stream_into(self, location: MediaLocation, spool, path: str) -> _Spooled:
        assert self._session is not None, "MediaImporter.open() was not called"
        digest, size = hashlib.sha256(), 0
        try:
            async with self._session.get(location.url, headers=dict(location.headers)) as response:
                metrics.API_CALLS.labels(self.connector, "media_download", f"{response.status // 100}xx").inc()
                if response.status != 200:
                    raise ImportFailed("download_failed", f"the platform answered HTTP {response.status}")
                if (response.content_length or 0) > MAX_FILE_BYTES:
                    raise ImportFailed("too_large", f"{response.content_length} bytes, above {MAX_FILE_BYTES}")
                async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
                    size += len(chunk)
                    if size > MAX_FILE_BYTES:
                        raise ImportFailed("too_large", f"more than {MAX_FILE_BYTES} bytes")
                    await asyncio.to_thread(_hash_and_write, digest, spool, chunk)
                content_type = response.headers.get("Content-Type", "")
        except aiohttp.ClientError as error:
            metrics.API_CALLS.labels(self.connector, "media_download", "connection_error").inc()
            raise ImportFailed("download_failed", f"{type(error).__name__}: {error}") from None
        if size == 0:
            raise ImportFailed("download_failed", "the platform served an empty file")
        return _Spooled(path, size, digest.hexdigest(), content_type)

    # Upload -------------------------------------------------------------------------------

    async def _store(self, reference: str, spooled: _Spooled, filename: str, content_type: str) -> tuple[ImportedFile, str]:
        # The content is part of the key: a URL that later serves other bytes gets a file of its
        # own instead of the file service refusing the reused request_id (ALREADY_EXISTS).
        key = (self.channel, self.account_id, reference, spooled.sha256)
        upload = await self._call(self.files.CreateUpload, file_requests.CreateUploadRequest(
            request_id=event_id_for("media-upload", *key), filename=filename, content_type=content_type,
            size_bytes=spooled.size_bytes, sha256=spooled.sha256, owner_user_id="",
        ))
        file = await self._file(upload.file_id)
        outcome = "reused"
        if file.state == file_pb2.FILE_STATE_UPLOADING:
            parts = await self._put_parts(upload, spooled)
            complete = file_requests.CompleteUploadRequest(
                request_id=event_id_for("media-complete", *key), upload_id=upload.upload_id, parts=parts
            )
            try:
                file = (await self._call(self.files.CompleteUpload, complete, timeout=None)).file
                outcome = "imported"
            except ImportFailed:
                # A concurrent import of the same media (a redelivery that outlived the claim) may
                # have completed it first: then it is done all the same.
                file = await self._file(upload.file_id)
                if file.state not in _DONE_STATES:
                    raise
        if file.state not in _DONE_STATES:
            state = file_pb2.FileState.Name(file.state)
            raise ImportFailed("upload_failed", f"file {file.file_id} is {state} {file.failure_reason}".rstrip())
        return ImportedFile(file.file_id, file.filename, file.declared_content_type, file.size_bytes, file.sha256), outcome

    async def _file(self, file_id: str) -> file_pb2.File:
        return (await self._call(self.files.GetFile, file_requests.GetFileRequest(file_id=file_id))).file

    async def _call(self, method, request, timeout: float | None = _FILES_CALL_SECONDS):
        """One FileService call with a couple of quick tries on UNAVAILABLE (safe: same request_id)."""
        for attempt in range(1, _FILES_ATTEMPTS + 1):
            try:
                return await method(request, timeout=timeout, metadata=self._metadata)
            except grpc.aio.AioRpcError as error:
                if error.code() not in _RETRYABLE or attempt == _FILES_ATTEMPTS:
                    name = type(request).__name__.removesuffix("Request")
                    raise ImportFailed("upload_failed", f"file service {name}: {error.code().name} {error.details()}") from None
            await asyncio.sleep(_FILES_BACKOFF_SECONDS * attempt)
        raise AssertionError("unreachable")

    async def _put_parts(self, upload: file_requests.CreateUploadResponse, spooled: _Spooled) -> list[file_pb2.CompletedPart]:
        gate = asyncio.Semaphore(_PARTS_AT_ONCE)

        async def put(part: file_pb2.UploadPartUrl) -> file_pb2.CompletedPart:
            offset = (part.part_number - 1) * upload.part_size_bytes
            length = min(upload.part_size_bytes, spooled.size_bytes - offset)
            async with gate:
                return await self._put_part(part, spooled.path, offset, length)

        tasks = [asyncio.create_task(put(part)) for part in upload.part_urls]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:  # one part failed: the others are of no use
                task.cancel()

    async def _put_part(self, part: file_pb2.UploadPartUrl, path: str, offset: int, length: int) -> file_pb2.CompletedPart:
        assert self._session is not None, "MediaImporter.open() was not called"
        problem = ""
        for _ in range(_PART_ATTEMPTS):
            try:
                # S3 refuses chunked uploads to presigned URLs: the exact length goes in the header.
                async with self._session.put(part.url, data=_read_range(path, offset, length),
                                             headers={"Content-Length": str(length)}) as response:
                    if response.status == 200 and response.headers.get("ETag"):
                        return file_pb2.CompletedPart(part_number=part.part_number, etag=response.headers["ETag"])
                    problem = f"HTTP {response.status}"
            except aiohttp.ClientError as error:
                problem = f"{type(error).__name__}: {error}"
        raise ImportFailed("upload_failed", f"part {part.part_number}: {problem}")


def _hash_and_write(digest, spool, chunk: bytes) -> None:
    # In a worker thread: hashlib releases the GIL on large buffers, and the write may block.
    digest.update(chunk)
    spool.write(chunk)


async def _read_range(path: str, offset: int, length: int) -> AsyncIterator[bytes]:
    """A part's bytes from the spool file, a chunk at a time, read in a worker thread."""
    with open(path, "rb", buffering=0) as source:
        await asyncio.to_thread(source.seek, offset)
        left = length
        while left:
            chunk = await asyncio.to_thread(source.read, min(_CHUNK_BYTES, left))
            if not chunk:
                raise OSError(f"the spool file ended {left} bytes early")
            left -= len(chunk)
            yield chunk


def _default_filename(media: event_pb2.PlatformMedia, content_type: str) -> str:
    """The URL's own file name when it has one, else "<kind>-<media id or URL digest><ext>"."""
    from_url = PurePosixPath(urlsplit(media.url).path).name if media.url else ""
    if "." in from_url:
        return from_url
    kind = connector_pb2.ContentKind.Name(media.kind).removeprefix("CONTENT_KIND_").lower()
    if kind == "unspecified":
        kind = "file"
    stem = media.media_id or hashlib.sha256(media.url.encode()).hexdigest()[:16]
    extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ""
    return f"{kind}-{stem}{extension}"
