"""The FileService started in-process on a test's own database and a SeaweedFS S3 server (see
seaweedfs.py), with what tests read back: its files over gRPC, their rows, their bytes in S3."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

from chat4all.files.v1 import message_pb2, request_response_pb2, service_pb2_grpc

from services.files import servicer as files
from services.files.settings import FileSettings
from tests.services.servers import query, serving
from tests.support.seaweedfs import S3Server

# The smallest part S3 accepts (every part but the last), so a few-MB file takes several parts.
TEST_PART_SIZE = 5 * 1024 * 1024


@dataclasses.dataclass
class RunningFileService:
    target: str  # host:port, for a client's settings
    stub: service_pb2_grpc.FileServiceStub
    postgres_dsn: str
    s3: S3Server

    async def file(self, file_id: str) -> message_pb2.File:
        return (await self.stub.GetFile(request_response_pb2.GetFileRequest(file_id=file_id))).file

    async def file_count(self) -> int:
        """Every file ever created on this (test's own) database, whatever its state."""
        [(count,)] = await query(self.postgres_dsn, "SELECT count(*) FROM files")
        return count

    async def files_with_sha256(self, sha256: str) -> int:
        """How many files hold this content (a thumbnail made by processing is another content)."""
        [(count,)] = await query(self.postgres_dsn, "SELECT count(*) FROM files WHERE sha256 = %s", (sha256,))
        return count

    async def stored_bytes(self, file_id: str) -> bytes:
        """The object in S3 as it is stored (not through the service)."""
        [(key,)] = await query(self.postgres_dsn, "SELECT object_key FROM files WHERE file_id = %s", (file_id,))

        def read() -> bytes:
            return self.s3.client().get_object(Bucket=self.s3.bucket, Key=key)["Body"].read()

        return await asyncio.to_thread(read)


@contextlib.asynccontextmanager
async def running_file_service(postgres_dsn: str, s3: S3Server, **settings: Any) -> AsyncIterator[RunningFileService]:
    values = {"part_size_bytes": TEST_PART_SIZE, **s3.settings(), **settings}
    async with serving(files, FileSettings, postgres_dsn, **values) as (runtime, channel):
        yield RunningFileService(f"127.0.0.1:{runtime.port}", service_pb2_grpc.FileServiceStub(channel), postgres_dsn, s3)


def noise_png(width: int, height: int) -> bytes:
    """A valid PNG of random pixels (they do not compress: about 3 bytes a pixel), so content-type
    detection sees an image whatever the size asked for."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))  # filter byte 0, then RGB
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
