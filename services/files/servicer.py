"""The FileService gRPC servicer: checks requests, then leaves uploads to `uploads`, metadata
to the store and bytes to object storage (clients move them through presigned URLs).

Beside the RPCs, each replica runs the processing worker (processing_worker.py: content type,
malware scan with clamd, thumbnails; what makes a file CLEAN) and the sweeper of abandoned
uploads (sweeper.py).

Files belong to the client that created the upload (services/runtime/tenancy.py): another
client's file or upload is NOT_FOUND, as an unknown one. owner_user_id is not checked here
(it never was: not even that the user exists); SendMessage checks that the sender owns the file."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
from chat4all.files.v1 import message_pb2, request_response_pb2 as rr, service_pb2, service_pb2_grpc

from services.files.object_store import ObjectStore
from services.files.processing import FileProcessing
from services.files.processing_worker import ProcessingWorker
from services.files.scanning import ClamdScanner
from services.files.settings import FileSettings
from services.files.store import FileStore
from services.files.sweeper import UploadSweeper
from services.files.uploads import MAX_FILE_BYTES, NewUpload, Uploads
from services.runtime.app import Runtime
from services.runtime.errors import FailedPrecondition, InvalidArgument
from services.runtime.idempotency import request_hash
from services.runtime.tenancy import caller_client, owner_for_new, require_owner, scoped_digest
from services.runtime.validation import parse_request_id, parse_uuid

SERVICE = service_pb2.DESCRIPTOR.services_by_name["FileService"]
SERVICE_NAME = SERVICE.full_name
MIGRATIONS = Path(__file__).parent / "migrations"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class FileService(service_pb2_grpc.FileServiceServicer):
    def __init__(self, store: FileStore, objects: ObjectStore, settings: FileSettings) -> None:
        self.store = store
        self.objects = objects
        self.settings = settings
        self.uploads = Uploads(store, objects, settings)

    async def CreateUpload(self, request: rr.CreateUploadRequest, context: grpc.aio.ServicerContext) -> rr.CreateUploadResponse:
        caller = caller_client(context)
        request_id = parse_request_id(request.request_id)
        upload = NewUpload(
            filename=_required("filename", request.filename),
            content_type=_required("content_type", request.content_type),
            size_bytes=_size(request.size_bytes),
            sha256=_sha256(request.sha256),
            # Empty for media a connector imports from a platform.
            owner_user_id=parse_uuid(request.owner_user_id, "owner_user_id") if request.owner_user_id else None,
            owner_client_id=owner_for_new(caller),
        )
        file = await self.uploads.create(request_id, scoped_digest(request_hash("CreateUpload", request), caller), upload)
        response = rr.CreateUploadResponse(
            upload_id=str(file.upload_id), file_id=str(file.file_id), part_size_bytes=file.part_size_bytes,
            part_urls=await self.uploads.part_urls(file),
        )
        response.expire_time.FromDatetime(file.expire_time)
        return response

    async def CompleteUpload(
        self, request: rr.CompleteUploadRequest, context: grpc.aio.ServicerContext
    ) -> rr.CompleteUploadResponse:
        caller = caller_client(context)
        request_id = parse_request_id(request.request_id)
        upload_id = parse_uuid(request.upload_id, "upload_id")
        digest = scoped_digest(request_hash("CompleteUpload", request), caller)
        file = await self.uploads.complete(request_id, digest, upload_id, _parts(request.parts), caller)
        return rr.CompleteUploadResponse(file=file.to_proto())

    async def GetFile(self, request: rr.GetFileRequest, context: grpc.aio.ServicerContext) -> rr.GetFileResponse:
        file = await self._file(parse_uuid(request.file_id, "file_id"), context)
        return rr.GetFileResponse(file=file.to_proto())

    async def GetDownloadUrl(
        self, request: rr.GetDownloadUrlRequest, context: grpc.aio.ServicerContext
    ) -> rr.GetDownloadUrlResponse:
        file = await self._file(parse_uuid(request.file_id, "file_id"), context)
        # The contract serves CLEAN files only: unscanned bytes could be malware.
        if file.state != message_pb2.FILE_STATE_CLEAN:
            raise FailedPrecondition(f"file {file.file_id} is {message_pb2.FileState.Name(file.state)}, not CLEAN")
        seconds = self.settings.download_url_seconds
        url = await self.objects.download_url(file.object_key, seconds, file.filename, file.detected_content_type)
        response = rr.GetDownloadUrlResponse(url=url)
        response.expire_time.FromDatetime(datetime.now(timezone.utc) + timedelta(seconds=seconds))
        return response

    async def _file(self, file_id, context: grpc.aio.ServicerContext):
        """The file, NOT_FOUND (as for an unknown id) if it is another client's."""
        file = await self.store.get(file_id)
        require_owner(caller_client(context), file.owner_client_id, f"file_id: no file {file_id}")
        return file


def _required(field: str, value: str) -> str:
    if not value.strip():
        raise InvalidArgument(f"{field} is required")
    return value


def _size(size_bytes: int) -> int:
    if size_bytes <= 0:
        raise InvalidArgument("size_bytes must be at least 1")
    if size_bytes > MAX_FILE_BYTES:
        raise InvalidArgument(f"size_bytes must be at most {MAX_FILE_BYTES} (2 GiB), got {size_bytes}")
    return size_bytes


def _sha256(value: str) -> str:
    if not _SHA256_HEX.fullmatch(value):
        raise InvalidArgument("sha256 must be 64 lowercase hex characters")
    return value


def _parts(parts) -> list[tuple[int, str]]:
    """Every part once, numbered 1, 2, 3... in order, each with its ETag."""
    if not parts:
        raise InvalidArgument("parts is required")
    for expected, part in enumerate(parts, start=1):
        if part.part_number != expected:
            raise InvalidArgument(
                f"parts[{expected - 1}]: part_number {part.part_number}, expected {expected}"
                " (parts must be listed once each, in order, none missing)"
            )
        if not part.etag.strip():
            raise InvalidArgument(f"parts[{expected - 1}]: etag is required")
    return [(part.part_number, part.etag) for part in parts]


async def setup(runtime: Runtime) -> None:
    settings = runtime.settings
    if not isinstance(settings, FileSettings):
        raise TypeError("the files service runs with FileSettings (it needs s3_bucket)")
    pool = await runtime.postgres("files", MIGRATIONS)
    objects = ObjectStore(
        settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_region, settings.s3_bucket
    )
    store = FileStore(pool)
    # Stopped in reverse, before the pool closes: the worker gives back the files it holds.
    if settings.processing_concurrency > 0:
        scanner = ClamdScanner(settings.clamd_address, settings.clamd_timeout_seconds, settings.clamd_stream_max_bytes)
        worker = ProcessingWorker(pool, objects, FileProcessing(objects, scanner, settings), settings)
        await worker.start()
        runtime.on_shutdown(worker.stop)
    sweeper = UploadSweeper(store, objects, settings.sweep_interval_seconds)
    await sweeper.start()
    runtime.on_shutdown(sweeper.stop)
    runtime.add_servicer(
        service_pb2_grpc.add_FileServiceServicer_to_server, FileService(store, objects, settings), SERVICE_NAME
    )
