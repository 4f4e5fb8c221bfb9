"""The sweeper of abandoned uploads: an upload never completed is aborted in S3 once it expires
(its parts are deleted and no part can be added) and the file is FAILED."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc
import pytest
import psycopg
from chat4all.files.v1 import message_pb2

from services.files.object_store import ObjectStore
from services.files.store import FileStore
from services.files.sweeper import UploadSweeper
from services.runtime.postgres import open_pool
from tests.files.client import (
    complete, eventually, files_service, get_file, service_stub, settled, upload_file, write_random_file,
)
from tests.services.servers import query


async def test_an_upload_left_incomplete_is_aborted_and_failed_once_it_expires(postgres_dsn, s3_server, clamd, tmp_path):
    path = tmp_path / "abandoned.bin"
    sha256 = write_random_file(path, 3000)
    async with files_service(postgres_dsn, s3_server, clamd.address, upload_expiry_seconds=2,
                             sweep_interval_seconds=0.2) as (_, channel):
        stub = service_stub(channel)
        created, parts = await upload_file(stub, path, sha256)
        [(key, s3_upload_id)] = await query(
            postgres_dsn, "SELECT object_key, s3_upload_id FROM files WHERE file_id = %s", (created.file_id,)
        )
        client = s3_server.client()
        listed = await asyncio.to_thread(client.list_parts, Bucket=s3_server.bucket, Key=key, UploadId=s3_upload_id)
        assert [part["PartNumber"] for part in listed["Parts"]] == [1]

        file = await settled(stub, created.file_id)
        assert file.state == message_pb2.FILE_STATE_FAILED, file
        assert "upload expired" in file.failure_reason and "parts were deleted" in file.failure_reason

        # S3 holds neither the upload nor its parts.
        with pytest.raises(client.exceptions.NoSuchUpload):
            await asyncio.to_thread(client.list_parts, Bucket=s3_server.bucket, Key=key, UploadId=s3_upload_id)
        uploads = await asyncio.to_thread(client.list_multipart_uploads, Bucket=s3_server.bucket, Prefix=key)
        assert [u["UploadId"] for u in uploads.get("Uploads", [])] == []
        # A part URL signed just now (the client's expired with the upload) takes nothing either.
        url = await asyncio.to_thread(
            client.generate_presigned_url, "upload_part",
            Params={"Bucket": s3_server.bucket, "Key": key, "UploadId": s3_upload_id, "PartNumber": 1}, ExpiresIn=60,
        )
        async with aiohttp.ClientSession() as http, http.put(url, data=path.read_bytes()) as answer:
            assert answer.status == 404, await answer.text()
        # And the upload cannot be completed any more.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CompleteUpload(complete(created, parts))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "expired" in refused.value.details()


async def _expired(postgres_dsn: str, file_id: str) -> bool:
    [(expired,)] = await query(postgres_dsn, "SELECT expire_time < now() FROM files WHERE file_id = %s", (file_id,))
    return expired


async def test_the_sweeper_leaves_live_uploads_and_those_a_completion_holds(postgres_dsn, s3_server, clamd, tmp_path):
    path = tmp_path / "some.bin"
    sha256 = write_random_file(path, 3000)
    # Services whose own sweeps (one at start, then hourly) are over before the uploads expire.
    async with files_service(postgres_dsn, s3_server, clamd.address, sweep_interval_seconds=3600) as (_, channel):
        live, live_parts = await upload_file(service_stub(channel), path, sha256)
    async with files_service(postgres_dsn, s3_server, clamd.address, sweep_interval_seconds=3600,
                             upload_expiry_seconds=1) as (_, channel):
        expired, _ = await upload_file(service_stub(channel), path, sha256)
    await eventually(lambda: _expired(postgres_dsn, expired.file_id), what="the upload expired")

    pool = await open_pool(postgres_dsn, 1, 2)
    try:
        objects = ObjectStore(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, s3_server.region,
                              s3_server.bucket)
        sweeper = UploadSweeper(FileStore(pool), objects, interval_seconds=3600)
        # A CompleteUpload holding the expired upload's row: the sweeper skips it, without waiting.
        async with await psycopg.AsyncConnection.connect(postgres_dsn) as completion:
            await completion.execute("SELECT 1 FROM files WHERE file_id = %s FOR UPDATE", (expired.file_id,))
            assert await asyncio.wait_for(sweeper.sweep(), 10) == 0
        assert await sweeper.sweep() == 1
        assert await sweeper.sweep() == 0
    finally:
        await pool.close()

    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_stub(channel)
        assert (await get_file(stub, expired.file_id)).state == message_pb2.FILE_STATE_FAILED
        assert (await get_file(stub, live.file_id)).state == message_pb2.FILE_STATE_UPLOADING
        done = await stub.CompleteUpload(complete(live, live_parts))
        assert done.file.state == message_pb2.FILE_STATE_PROCESSING
