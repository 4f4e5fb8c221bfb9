"""Processing on real PostgreSQL, S3 (SeaweedFS) and clamd: what makes a file CLEAN (content type
from the bytes, malware scan, thumbnail), QUARANTINED or FAILED, and how the worker is driven
(NOTIFY, retries while clamd is away, leases shared by replicas)."""

from __future__ import annotations

import hashlib
import io
import os
import uuid

import grpc
import pytest
from chat4all.files.v1 import message_pb2, request_response_pb2 as rr
from PIL import Image

from tests.files.client import (
    EICAR, MiB, download, eventually, files_service, get_file, service_stub, settled, upload_bytes,
)
from tests.files.conftest import MARKER, MARKER_SIGNATURE, start_clamd
from tests.services.servers import execute, query
from tests.support.ports import free_port
from tests.support.uploads import png

F = message_pb2.FileState


async def download_refused(stub, file_id: str) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetDownloadUrl(rr.GetDownloadUrlRequest(file_id=file_id))
    return refused.value.code()


async def downloaded(stub, file_id: str) -> bytes:
    status, data = await download((await stub.GetDownloadUrl(rr.GetDownloadUrlRequest(file_id=file_id))).url)
    assert status == 200
    return data


async def test_the_eicar_test_file_is_quarantined_and_never_served(postgres_dsn, s3_server, clamd, tmp_path):
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_stub(channel)
        completed = await upload_bytes(stub, tmp_path, EICAR, "invoice.pdf", "application/pdf")
        file = await settled(stub, completed.file_id)
        assert file.state == F.FILE_STATE_QUARANTINED, file
        assert "Eicar-Test-Signature" in file.failure_reason
        assert file.detected_content_type == "text/plain" and not file.thumbnail_file_id
        assert await download_refused(stub, file.file_id) == grpc.StatusCode.FAILED_PRECONDITION


async def test_an_image_is_clean_with_its_detected_type_and_a_thumbnail_of_its_own(postgres_dsn, s3_server, clamd, tmp_path):
    owner = str(uuid.uuid4())
    original = png(800, 600)
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_stub(channel)
        # Declared as anything: the bytes say what it is.
        completed = await upload_bytes(stub, tmp_path, original, "holiday", "application/octet-stream", owner_user_id=owner)
        file = await settled(stub, completed.file_id)
        assert file.state == F.FILE_STATE_CLEAN, file
        assert (file.declared_content_type, file.detected_content_type) == ("application/octet-stream", "image/png")
        assert file.failure_reason == "" and file.thumbnail_file_id
        assert await downloaded(stub, file.file_id) == original

        thumbnail = await get_file(stub, file.thumbnail_file_id)
        assert thumbnail.state == F.FILE_STATE_CLEAN and thumbnail.owner_user_id == owner
        assert thumbnail.detected_content_type == "image/jpeg" and not thumbnail.thumbnail_file_id
        data = await downloaded(stub, thumbnail.file_id)
        assert (len(data), thumbnail.sha256) == (thumbnail.size_bytes, hashlib.sha256(data).hexdigest())
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and image.size == (320, 240)  # the original's proportions


async def test_a_transparent_image_keeps_its_transparency_in_a_png_thumbnail(postgres_dsn, s3_server, clamd, tmp_path):
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_stub(channel)
        completed = await upload_bytes(stub, tmp_path, png(200, 500, transparent=True), "logo.png", "image/png")
        file = await settled(stub, completed.file_id)
        thumbnail = await get_file(stub, file.thumbnail_file_id)
        assert (thumbnail.detected_content_type, thumbnail.filename) == ("image/png", "logo.thumbnail.png")
        with Image.open(io.BytesIO(await downloaded(stub, thumbnail.file_id))) as image:
            assert image.format == "PNG" and image.mode == "RGBA" and max(image.size) == 320
            assert image.getchannel("A").getextrema()[0] < 255


async def test_text_declared_as_an_image_is_text_and_has_no_thumbnail(postgres_dsn, s3_server, clamd, tmp_path):
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_stub(channel)
        completed = await upload_bytes(stub, tmp_path, b"just some words\n" * 100, "cat.png", "image/png")
        file = await settled(stub, completed.file_id)
        assert file.state == F.FILE_STATE_CLEAN, file
        assert (file.declared_content_type, file.detected_content_type) == ("image/png", "text/plain")
        assert not file.thumbnail_file_id


@pytest.mark.parametrize("limit", ["thumbnail_max_pixels", "thumbnail_max_source_bytes"])
async def test_images_beyond_the_limits_are_clean_without_a_thumbnail(postgres_dsn, s3_server, clamd, tmp_path, limit):
    # 4000x4000 of one colour: a few dozen KB of PNG that decode to 48 MB of pixels.
    bomb = io.BytesIO()
    Image.new("RGB", (4000, 4000), (200, 30, 30)).save(bomb, format="PNG")
    settings = {"thumbnail_max_pixels": 10_000_000} if limit == "thumbnail_max_pixels" else {"thumbnail_max_source_bytes": 10_000}
    async with files_service(postgres_dsn, s3_server, clamd.address, **settings) as (_, channel):
        stub = service_stub(channel)
        completed = await upload_bytes(stub, tmp_path, bomb.getvalue(), "huge.png", "image/png")
        file = await settled(stub, completed.file_id)
        assert (file.state, file.detected_content_type) == (F.FILE_STATE_CLEAN, "image/png")
        assert not file.thumbnail_file_id
    [(count,)] = await query(postgres_dsn, "SELECT count(*) FROM files")
    assert count == 1


async def test_a_completed_upload_is_processed_at_once_not_at_the_next_poll(postgres_dsn, s3_server, clamd, tmp_path):
    poll = 120.0
    async with files_service(postgres_dsn, s3_server, clamd.address, processing_poll_seconds=poll) as (_, channel):
        stub = service_stub(channel)
        completed = await upload_bytes(stub, tmp_path, b"hello\n", "hello.txt", "text/plain")
        # Woken by the NOTIFY of CompleteUpload's transaction: well within the poll interval.
        assert (await settled(stub, completed.file_id, timeout=poll / 4)).state == F.FILE_STATE_CLEAN


async def _deferred_at_least(postgres_dsn: str, file_id: str, count: int) -> bool:
    [(deferrals,)] = await query(postgres_dsn, "SELECT processing_deferrals FROM files WHERE file_id = %s", (file_id,))
    return deferrals >= count


async def test_while_clamd_is_unreachable_files_wait_in_processing_then_become_clean(
        postgres_dsn, s3_server, tmp_path, log_dir):
    port = free_port()  # nothing listens here yet
    # One attempt allowed: were the missing scanner counted as a failed attempt, the file would be FAILED.
    async with files_service(postgres_dsn, s3_server, f"127.0.0.1:{port}", processing_max_attempts=1,
                             processing_retry_base_seconds=0.1, processing_retry_max_seconds=0.3) as (_, channel):
        stub = service_stub(channel)
        completed = await upload_bytes(stub, tmp_path, png(64, 64), "icon.png", "image/png")
        await eventually(lambda: _deferred_at_least(postgres_dsn, completed.file_id, 3), what="three tries put off")
        waiting = await get_file(stub, completed.file_id)
        assert (waiting.state, waiting.failure_reason) == (F.FILE_STATE_PROCESSING, "")
        assert await download_refused(stub, completed.file_id) == grpc.StatusCode.FAILED_PRECONDITION
        [(error,)] = await query(postgres_dsn, "SELECT processing_error FROM files WHERE file_id = %s", (completed.file_id,))
        assert "cannot be reached" in error

        scanner = start_clamd(tmp_path / "clamd", log_dir, port)
        try:
            file = await settled(stub, completed.file_id)
            assert file.state == F.FILE_STATE_CLEAN and file.thumbnail_file_id, file
        finally:
            scanner.stop()


async def test_a_stream_clamd_refuses_is_a_failure_never_clean(postgres_dsn, s3_server, small_clamd, tmp_path):
    # The service streams up to its default 2 GiB - 3 bytes in one go; this clamd takes 1 MiB.
    async with files_service(postgres_dsn, s3_server, small_clamd.address, processing_max_attempts=2,
                             processing_retry_base_seconds=0.1) as (_, channel):
        stub = service_stub(channel)
        completed = await upload_bytes(stub, tmp_path, os.urandom(2 * MiB), "big.bin", "application/octet-stream")
        file = await settled(stub, completed.file_id)
        assert file.state == F.FILE_STATE_FAILED, file
        assert "processing failed 2 times" in file.failure_reason
        assert "INSTREAM size limit exceeded" in file.failure_reason
        assert await download_refused(stub, file.file_id) == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("marker_at", [None, "start", "end"])
async def test_content_longer_than_a_clamd_stream_is_scanned_whole_in_windows(
        postgres_dsn, s3_server, small_clamd, tmp_path, marker_at):
    data = bytearray(os.urandom(3 * MiB + 12345))
    if marker_at == "start":
        data[10:10 + len(MARKER)] = MARKER
    elif marker_at == "end":
        data[-len(MARKER) - 10:-10] = MARKER
    async with files_service(postgres_dsn, s3_server, small_clamd.address, clamd_stream_max_bytes=1_000_000) as (_, channel):
        stub = service_stub(channel)
        completed = await upload_bytes(stub, tmp_path, bytes(data), "data.bin", "application/octet-stream")
        file = await settled(stub, completed.file_id)
    if marker_at is None:
        assert file.state == F.FILE_STATE_CLEAN, file
    else:
        assert file.state == F.FILE_STATE_QUARANTINED, file
        assert MARKER_SIGNATURE in file.failure_reason


async def _simulate_crashed_worker(postgres_dsn: str, file_id: str, attempts: int, lease_left_seconds: float) -> None:
    """What a worker that died while processing the file leaves behind: its lease and attempt count."""
    await execute(
        postgres_dsn,
        "UPDATE files SET processing_lease_token = %s, processing_attempts = %s,"
        " processing_lease_until = now() + make_interval(secs => %s) WHERE file_id = %s",
        (uuid.uuid4(), attempts, lease_left_seconds, file_id),
    )


async def test_a_crashed_workers_file_is_taken_again_once_its_lease_lapses(postgres_dsn, s3_server, clamd, tmp_path):
    async with files_service(postgres_dsn, s3_server, clamd.address, processing_concurrency=0) as (_, channel):
        stub = service_stub(channel)
        completed = await upload_bytes(stub, tmp_path, b"left behind\n", "note.txt", "text/plain")
        await _simulate_crashed_worker(postgres_dsn, completed.file_id, attempts=1, lease_left_seconds=2)
        [(lease_until,)] = await query(postgres_dsn, "SELECT processing_lease_until FROM files WHERE file_id = %s",
                                       (completed.file_id,))
    async with files_service(postgres_dsn, s3_server, clamd.address, processing_poll_seconds=0.5) as (_, channel):
        stub = service_stub(channel)
        file = await settled(stub, completed.file_id)
        assert file.state == F.FILE_STATE_CLEAN, file
        # Not before the dead worker's lease ran out.
        assert file.update_time.ToDatetime().replace(tzinfo=lease_until.tzinfo) >= lease_until


async def test_a_file_whose_last_attempt_was_cut_short_fails(postgres_dsn, s3_server, clamd, tmp_path):
    async with files_service(postgres_dsn, s3_server, clamd.address, processing_concurrency=0) as (_, channel):
        completed = await upload_bytes(service_stub(channel), tmp_path, b"crashes us\n", "note.txt", "text/plain")
        await _simulate_crashed_worker(postgres_dsn, completed.file_id, attempts=3, lease_left_seconds=-1)
    async with files_service(postgres_dsn, s3_server, clamd.address, processing_max_attempts=3) as (_, channel):
        file = await settled(service_stub(channel), completed.file_id)
        assert file.state == F.FILE_STATE_FAILED and "cut short 3 times" in file.failure_reason, file


async def test_replicas_share_the_work_and_process_each_file_once(postgres_dsn, s3_server, clamd, tmp_path):
    async with files_service(postgres_dsn, s3_server, clamd.address, processing_concurrency=2) as (_, one), \
            files_service(postgres_dsn, s3_server, clamd.address, processing_concurrency=2) as (_, two):
        stubs = [service_stub(one), service_stub(two)]
        ids = [(await upload_bytes(stubs[i % 2], tmp_path, png(100 + i, 80), f"p{i}.png", "image/png")).file_id
               for i in range(8)]
        files = [await settled(stubs[0], file_id) for file_id in ids]
    assert all(file.state == F.FILE_STATE_CLEAN and file.thumbnail_file_id for file in files)
    # One thumbnail each: no file was processed twice.
    [(count,)] = await query(postgres_dsn, "SELECT count(*) FROM files")
    assert count == 16
    [(attempts,)] = await query(postgres_dsn, "SELECT sum(processing_attempts) FROM files WHERE thumbnail_file_id IS NOT NULL")
    assert attempts == 8
