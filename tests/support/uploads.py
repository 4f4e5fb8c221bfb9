"""What a client of the file service does: upload bytes through the presigned part URLs,
complete the upload, and wait for processing to settle the file's state."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
import uuid

import aiohttp
from chat4all.files.v1 import message_pb2 as file_pb2
from chat4all.files.v1 import request_response_pb2 as file_requests
from chat4all.files.v1 import service_pb2_grpc as file_grpc

F = file_pb2.FileState
SETTLED = frozenset({F.FILE_STATE_CLEAN, F.FILE_STATE_QUARANTINED, F.FILE_STATE_FAILED})


def png(width: int = 64, height: int = 48, transparent: bool = False, noise: bool = False) -> bytes:
    """A real PNG (Pillow): a gradient, half see-through when `transparent`; or random pixels,
    which do not compress (about 3 bytes a pixel)."""
    from PIL import Image

    if noise:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        mode = "RGBA" if transparent else "RGB"
        image = Image.new(mode, (width, height))
        image.putdata([
            (x * 255 // width, y * 255 // height, 128, 128 if transparent and x < width // 2 else 255)[: len(mode)]
            for y in range(height) for x in range(width)
        ])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def upload(
    files: file_grpc.FileServiceStub, http: aiohttp.ClientSession, data: bytes, filename: str, content_type: str,
    owner_user_id: str, complete: bool = True,
) -> str:
    """The new file's id, after its parts were PUT and (unless `complete` is false) the upload completed."""
    created = await files.CreateUpload(file_requests.CreateUploadRequest(
        request_id=str(uuid.uuid4()), filename=filename, content_type=content_type, size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(), owner_user_id=owner_user_id,
    ))
    parts = []
    for part in created.part_urls:
        start = (part.part_number - 1) * created.part_size_bytes
        async with http.put(part.url, data=data[start:start + created.part_size_bytes]) as response:
            assert response.status == 200, await response.text()
            parts.append(file_pb2.CompletedPart(part_number=part.part_number, etag=response.headers["ETag"]))
    if complete:
        await files.CompleteUpload(file_requests.CompleteUploadRequest(
            request_id=str(uuid.uuid4()), upload_id=created.upload_id, parts=parts))
    return created.file_id


async def settled_file(files: file_grpc.FileServiceStub, file_id: str, timeout: float = 120) -> file_pb2.File:
    """The file once processing has decided it (CLEAN, QUARANTINED or FAILED)."""
    deadline = time.monotonic() + timeout
    while True:
        file = (await files.GetFile(file_requests.GetFileRequest(file_id=file_id))).file
        if file.state in SETTLED:
            return file
        assert time.monotonic() < deadline, f"file {file_id} is still {F.Name(file.state)}"
        await asyncio.sleep(0.2)


async def clean_upload(
    files: file_grpc.FileServiceStub, http: aiohttp.ClientSession, data: bytes, filename: str, content_type: str,
    owner_user_id: str,
) -> file_pb2.File:
    file = await settled_file(files, await upload(files, http, data, filename, content_type, owner_user_id))
    assert file.state == F.FILE_STATE_CLEAN, file
    return file
