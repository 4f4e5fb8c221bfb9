"""What the file tests do as clients of a FileService started in-process: upload through the
presigned part URLs (streamed from disk, or from bytes), complete, wait for processing, download."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from chat4all.files.v1 import message_pb2, request_response_pb2 as rr, service_pb2_grpc

from services.files import servicer as files
from services.files.settings import FileSettings
from tests.services.servers import serving

MiB = 1024 * 1024
# The smallest part S3 accepts (every part but the last), so a few-MB file takes several parts.
TEST_PART_SIZE = 5 * MiB
_STREAM_CHUNK = 256 * 1024
F = message_pb2.FileState
SETTLED = frozenset({F.FILE_STATE_CLEAN, F.FILE_STATE_QUARANTINED, F.FILE_STATE_FAILED})
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def files_service(postgres_dsn: str, s3_server, clamd_address: str, **settings):
    """The service on the test's database and S3, scanning with the clamd at `clamd_address`;
    processing retries come quickly, so tests that make them do not wait long."""
    defaults = {
        "part_size_bytes": TEST_PART_SIZE, "clamd_address": clamd_address,
        "processing_retry_base_seconds": 0.2, "processing_retry_max_seconds": 1.0,
    }
    return serving(files, FileSettings, postgres_dsn, **{**defaults, **s3_server.settings(), **settings})


def write_random_file(path: Path, size: int) -> str:
    """Random bytes to disk; returns their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(MiB, left))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


async def _read_range(path: Path, offset: int, length: int):
    """The part's bytes from disk, chunk by chunk: the test never holds a part in memory."""
    with open(path, "rb") as source:
        source.seek(offset)
        left = length
        while left:
            chunk = await asyncio.to_thread(source.read, min(_STREAM_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


async def put_parts(upload: rr.CreateUploadResponse, path: Path) -> list[message_pb2.CompletedPart]:
    """PUT every part to its presigned URL, streamed from disk; returns the parts with ETags."""
    size, completed = path.stat().st_size, []
    async with aiohttp.ClientSession() as http:
        for part in upload.part_urls:
            offset = (part.part_number - 1) * upload.part_size_bytes
            length = min(upload.part_size_bytes, size - offset)
            # S3 refuses chunked uploads to presigned URLs: the exact length goes in the header.
            body = _read_range(path, offset, length)
            async with http.put(part.url, data=body, headers={"Content-Length": str(length)}) as answer:
                assert answer.status == 200, await answer.text()
                completed.append(message_pb2.CompletedPart(part_number=part.part_number, etag=answer.headers["ETag"]))
    return completed


def create_request(path: Path, sha256: str, size: int | None = None, **fields) -> rr.CreateUploadRequest:
    return rr.CreateUploadRequest(**{
        "request_id": str(uuid.uuid4()), "filename": path.name, "content_type": "application/octet-stream",
        "size_bytes": path.stat().st_size if size is None else size, "sha256": sha256, **fields,
    })


async def upload_file(stub, path: Path, sha256: str, size: int | None = None, **fields) -> tuple[rr.CreateUploadResponse, list]:
    created = await stub.CreateUpload(create_request(path, sha256, size, **fields))
    return created, await put_parts(created, path)


def complete(created: rr.CreateUploadResponse, parts) -> rr.CompleteUploadRequest:
    return rr.CompleteUploadRequest(request_id=str(uuid.uuid4()), upload_id=created.upload_id, parts=parts)


async def upload_bytes(stub, tmp_path: Path, data: bytes, filename: str, content_type: str, **fields) -> message_pb2.File:
    """Upload and complete `data`; returns the file as CompleteUpload answered (PROCESSING)."""
    directory = tmp_path / uuid.uuid4().hex
    directory.mkdir()
    path = directory / filename
    path.write_bytes(data)
    created, parts = await upload_file(stub, path, hashlib.sha256(data).hexdigest(), content_type=content_type, **fields)
    return (await stub.CompleteUpload(complete(created, parts))).file


async def get_file(stub, file_id: str) -> message_pb2.File:
    return (await stub.GetFile(rr.GetFileRequest(file_id=file_id))).file


async def settled(stub, file_id: str, timeout: float = 60) -> message_pb2.File:
    """The file once processing has decided it (CLEAN, QUARANTINED or FAILED)."""
    deadline = time.monotonic() + timeout
    while True:
        file = await get_file(stub, file_id)
        if file.state in SETTLED:
            return file
        assert time.monotonic() < deadline, f"file {file_id} is still {F.Name(file.state)} after {timeout} s"
        await asyncio.sleep(0.1)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what} not met after {timeout} s"
        await asyncio.sleep(0.1)


async def download(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        return answer.status, await answer.read()


async def download_sha256(url: str) -> tuple[int, str, int]:
    """Status, SHA-256 and size of a GET of the URL, streamed."""
    digest, size = hashlib.sha256(), 0
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        async for chunk in answer.content.iter_chunked(_STREAM_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        return answer.status, digest.hexdigest(), size


async def object_exists(s3_server, file_id: str) -> bool:
    client = s3_server.client()
    try:
        await asyncio.to_thread(client.head_object, Bucket=s3_server.bucket, Key=f"files/{file_id}")
        return True
    except client.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] in ("404", "NoSuchKey"), exc
        return False


def service_stub(channel) -> service_pb2_grpc.FileServiceStub:
    return service_pb2_grpc.FileServiceStub(channel)
