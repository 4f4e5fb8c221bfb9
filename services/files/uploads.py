"""The two halves of an upload: start it (CreateUpload) and finish it (CompleteUpload).

Each runs in one PostgreSQL transaction around its S3 calls, so an idempotent retry, or a
concurrent duplicate waiting on the claimed request_id or the locked file row, sees either
nothing or the whole change.
"""

from __future__ import annotations

import contextlib
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from chat4all.files.v1 import message_pb2

from services.files.object_store import ObjectStore, etag
from services.files.settings import FileSettings
from services.files.store import FileRow, FileStore
from services.runtime.errors import FailedPrecondition, InvalidArgument
from services.runtime.tenancy import require_owner

log = logging.getLogger("chat4all.files")

MAX_FILE_BYTES = 2 * 1024**3
S3_MIN_PART_BYTES = 5 * 1024**2
S3_MAX_PARTS = 10_000


@dataclass(frozen=True)
class NewUpload:
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    owner_user_id: uuid.UUID | None  # None: media a connector imported from a platform
    owner_client_id: str  # the client creating it (tenancy.owner_for_new)


def part_size_for(size_bytes: int, preferred: int) -> int:
    """The preferred part size, but never below S3's 5 MiB minimum (it refuses to assemble
    smaller parts) and grown when the file would need more than S3's 10,000 parts."""
    return max(preferred, S3_MIN_PART_BYTES, math.ceil(size_bytes / S3_MAX_PARTS))


def part_count(size_bytes: int, part_size: int) -> int:
    return math.ceil(size_bytes / part_size)


class _Failed(Exception):
    """The upload cannot succeed any more (expired, or the bytes are not what was declared);
    the file is marked FAILED once the transaction has rolled back."""


class Uploads:
    def __init__(self, store: FileStore, objects: ObjectStore, settings: FileSettings) -> None:
        self.store = store
        self.objects = objects
        self.settings = settings

    async def create(self, request_id: uuid.UUID, digest: bytes, upload: NewUpload) -> FileRow:
        file_id = uuid.uuid4()
        async with self.store.transaction() as tx:
            earlier = await tx.claim_request(request_id, "CreateUpload", digest, file_id)
            if earlier is not None:
                return await tx.file(earlier)
            key = f"files/{file_id}"
            s3_upload_id = await self.objects.start_multipart(key, upload.content_type)
            try:
                expire_time = datetime.now(timezone.utc) + timedelta(seconds=self.settings.upload_expiry_seconds)
                return await tx.insert_upload(
                    file_id, uuid.uuid4(), s3_upload_id, key, upload.filename, upload.content_type, upload.size_bytes,
                    upload.sha256, part_size_for(upload.size_bytes, self.settings.part_size_bytes), expire_time,
                    upload.owner_user_id, upload.owner_client_id,
                )
            except BaseException:
                # Nothing in the database points at it: do not leave its parts behind (best effort;
                # the original error is what the client must see).
                with contextlib.suppress(Exception):
                    await self.objects.abort_multipart(key, s3_upload_id)
                raise

    async def part_urls(self, file: FileRow) -> list[message_pb2.UploadPartUrl]:
        """Fresh URLs for every part, valid until the upload expires (a retry gets new ones)."""
        seconds = max(1, math.ceil((file.expire_time - datetime.now(timezone.utc)).total_seconds()))
        numbers = range(1, part_count(file.size_bytes, file.part_size_bytes) + 1)
        urls = await self.objects.part_urls(file.object_key, file.s3_upload_id, numbers, seconds)
        return [message_pb2.UploadPartUrl(part_number=n, url=url) for n, url in zip(numbers, urls)]

    async def complete(
        self, request_id: uuid.UUID, digest: bytes, upload_id: uuid.UUID, parts: list[tuple[int, str]], caller: str | None
    ) -> FileRow:
        try:
            async with self.store.transaction() as tx:
                file = await tx.lock_upload(upload_id)
                # Another client's upload is as unknown as one that does not exist.
                require_owner(caller, file.owner_client_id, f"upload_id: no upload {upload_id}")
                earlier = await tx.claim_request(request_id, "CompleteUpload", digest, file.file_id)
                if earlier is not None:
                    return await tx.file(earlier)
                await self._check_completable(file, parts)
                await self._assemble(file, parts)
                await self._verify(file)
                # Checksum and size are verified; content-type detection, malware scan and
                # thumbnail run in the processing workers (processing.py), woken at commit.
                await tx.notify_processing(file.file_id)
                return await tx.set_state(file.file_id, message_pb2.FILE_STATE_PROCESSING)
        except _Failed as failure:
            # Recorded outside the rolled-back transaction (the request claim goes with it), so the
            # file stays FAILED with its reason and a retry gets the same refusal.
            await self.store.set_state(file.file_id, message_pb2.FILE_STATE_FAILED, str(failure))
            raise FailedPrecondition(f"upload {upload_id}: {failure}") from None

    async def _check_completable(self, file: FileRow, parts: list[tuple[int, str]]) -> None:
        if file.state == message_pb2.FILE_STATE_FAILED:
            raise FailedPrecondition(f"upload {file.upload_id} failed: {file.failure_reason}")
        if file.state != message_pb2.FILE_STATE_UPLOADING:
            raise FailedPrecondition(f"upload {file.upload_id} was already completed by another request")
        if file.expire_time <= datetime.now(timezone.utc):
            # Its part URLs no longer work: drop the parts S3 holds and fail the file.
            await self.objects.abort_multipart(file.object_key, file.s3_upload_id)
            raise _Failed(f"upload expired at {file.expire_time.isoformat()}")
        expected = part_count(file.size_bytes, file.part_size_bytes)
        if len(parts) != expected:
            raise InvalidArgument(f"parts: the upload has {expected} parts, {len(parts)} were listed")

    async def _assemble(self, file: FileRow, parts: list[tuple[int, str]]) -> None:
        stored = await self.objects.uploaded_parts(file.object_key, file.s3_upload_id)
        if stored is None:
            # An earlier attempt assembled the object but did not commit (a crash, a lost
            # connection): _verify reads what it made. Had S3 dropped the upload, there is no
            # object and _verify says so.
            return
        for number, tag in parts:
            if number not in stored:
                raise FailedPrecondition(f"parts: part {number} was not uploaded")
            if stored[number] != etag(tag):
                raise FailedPrecondition(f"parts: the ETag of part {number} does not match the stored part")
        await self.objects.complete_multipart(file.object_key, file.s3_upload_id, parts)

    async def _verify(self, file: FileRow) -> None:
        """Read the object back: its size and SHA-256 must be those declared at CreateUpload."""
        stored = await self.objects.measure(file.object_key)
        if stored is None:
            raise FailedPrecondition(f"upload {file.upload_id}: object storage holds neither its parts nor its file")
        problem = ""
        if stored.size_bytes != file.size_bytes:
            problem = f"size mismatch: declared {file.size_bytes} bytes, uploaded {stored.size_bytes}"
        elif stored.sha256 != file.sha256:
            problem = f"sha256 mismatch: declared {file.sha256}, uploaded {stored.sha256}"
        if problem:
            # Never keep bytes nobody vouched for.
            await self.objects.delete(file.object_key)
            log.warning("upload rejected", extra={"file_id": str(file.file_id), "reason": problem})
            raise _Failed(f"{problem}; the stored bytes were deleted")
