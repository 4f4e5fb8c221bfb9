"""A 2 GiB file through the real file service and SeaweedFS (slow: run with -m slow).

The client streams the file from disk, part by part, to the presigned part URLs, completes
the upload (the service reads the object back to verify size and SHA-256), waits for the
scan, and downloads it through a presigned URL. No byte passes through a Chat4All process,
so the file service's memory must stay flat: its RSS is sampled the whole time."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from chat4all.files.v1 import message_pb2 as file_pb2
from chat4all.files.v1 import request_response_pb2 as file_requests
from chat4all.files.v1 import service_pb2_grpc as file_grpc

from tests.support.platform import running_platform
from tests.support.uploads import settled_file

pytestmark = pytest.mark.slow

GiB = 1024**3
MiB = 1024**2
CHUNK = 4 * MiB
# Bounded: a few buffers and the runtime, whatever the file's size (it would be over 2 GiB
# if the service held the file).
RSS_LIMIT_BYTES = 400 * MiB


def files_only(raw: dict[str, Any]) -> None:
    raw["kafka"]["storage"] = "memory"
    raw["apps"] = {name: app for name, app in raw["apps"].items() if name in ("files", "clamd")}


@pytest.fixture(scope="module")
def platform():
    with running_platform(files_only) as handle:
        handle.check("up", timeout=300)
        yield handle


def write_random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // CHUNK):
            chunk = os.urandom(CHUNK)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def sample_rss(pid: int, peaks: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peaks.append(rss_bytes(pid))
        try:
            await asyncio.wait_for(stop.wait(), 0.2)
        except TimeoutError:
            pass


async def read_part(path: Path, offset: int, length: int):
    """The part's bytes as a stream of chunks, read from disk as they are sent."""
    with path.open("rb") as source:
        source.seek(offset)
        left = length
        while left:
            chunk = await asyncio.to_thread(source.read, min(CHUNK, left))
            left -= len(chunk)
            yield chunk


async def test_a_2_gib_file_goes_up_and_down_intact_while_the_file_service_memory_stays_flat(platform, tmp_path):
    size = 2 * GiB
    path = tmp_path / "big.bin"
    sha256 = await asyncio.to_thread(write_random_file, path, size)
    files_pid = platform.pids()["files"]
    peaks: list[int] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(files_pid, peaks, stop))

    async with grpc.aio.insecure_channel(f"127.0.0.1:{platform.raw['apps']['files']['grpc_port']}") as channel, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
        files = file_grpc.FileServiceStub(channel)
        created = await files.CreateUpload(file_requests.CreateUploadRequest(
            request_id=str(uuid.uuid4()), filename="big.bin", content_type="application/octet-stream",
            size_bytes=size, sha256=sha256, owner_user_id=str(uuid.uuid4())))
        assert len(created.part_urls) * created.part_size_bytes >= size

        async def put(part: file_pb2.UploadPartUrl) -> file_pb2.CompletedPart:
            offset = (part.part_number - 1) * created.part_size_bytes
            length = min(created.part_size_bytes, size - offset)
            headers = {"Content-Length": str(length)}
            async with http.put(part.url, data=read_part(path, offset, length), headers=headers) as response:
                assert response.status == 200, await response.text()
                return file_pb2.CompletedPart(part_number=part.part_number, etag=response.headers["ETag"])

        parts = []
        for batch in range(0, len(created.part_urls), 4):  # four parts in flight at a time
            parts += await asyncio.gather(*(put(p) for p in created.part_urls[batch:batch + 4]))
        completed = await files.CompleteUpload(file_requests.CompleteUploadRequest(
            request_id=str(uuid.uuid4()), upload_id=created.upload_id, parts=parts), timeout=600)
        assert completed.file.size_bytes == size and completed.file.sha256 == sha256

        file = await settled_file(files, created.file_id, timeout=900)
        assert file.state == file_pb2.FILE_STATE_CLEAN, file
        url = await files.GetDownloadUrl(file_requests.GetDownloadUrlRequest(file_id=created.file_id))
        downloaded, digest = 0, hashlib.sha256()
        async with http.get(url.url) as response:
            assert response.status == 200
            async for chunk in response.content.iter_chunked(CHUNK):
                digest.update(chunk)
                downloaded += len(chunk)
        assert (downloaded, digest.hexdigest()) == (size, sha256)

    stop.set()
    await sampler
    peak = max(peaks)
    print(f"files service RSS: start {peaks[0] / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB over {len(peaks)} samples")
    assert peak < RSS_LIMIT_BYTES, f"the file service grew to {peak / MiB:.0f} MiB handling a 2 GiB file"
