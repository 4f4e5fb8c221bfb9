"""FileService on real PostgreSQL, real S3 (SeaweedFS) and a real clamd: a file goes up in
parts through presigned URLs, is verified on completion, processed, and comes back intact
through a download URL."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import aiohttp
import grpc
import pytest
from chat4all.files.v1 import message_pb2, request_response_pb2 as rr, service_pb2_grpc

from services.files.uploads import part_count, part_size_for
from tests.files.client import (
    TEST_PART_SIZE, MiB, complete, create_request, download_sha256, files_service, get_file, object_exists, put_parts,
    settled, upload_bytes, upload_file, write_random_file,
)
from tests.services.servers import query
from tests.support.uploads import png


async def test_a_file_goes_up_in_parts_and_comes_back_intact(postgres_dsn, s3_server, clamd, tmp_path):
    path = tmp_path / "video.bin"
    size = 12 * MiB + 12345  # three parts: 5 MiB, 5 MiB and the rest
    sha256 = write_random_file(path, size)
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_pb2_grpc.FileServiceStub(channel)
        created, parts = await upload_file(stub, path, sha256)
        assert created.part_size_bytes == TEST_PART_SIZE
        assert [p.part_number for p in created.part_urls] == [1, 2, 3]
        assert created.expire_time.seconds > 0

        uploading = (await stub.GetFile(rr.GetFileRequest(file_id=created.file_id))).file
        assert uploading.state == message_pb2.FILE_STATE_UPLOADING

        done = (await stub.CompleteUpload(complete(created, parts))).file
        assert (done.file_id, done.size_bytes, done.sha256) == (created.file_id, size, sha256)
        assert done.filename == "video.bin" and done.declared_content_type == "application/octet-stream"
        # Checksum verified; content type, scan and thumbnail run asynchronously.
        assert done.state == message_pb2.FILE_STATE_PROCESSING

        processed = await settled(stub, created.file_id)
        assert processed.state == message_pb2.FILE_STATE_CLEAN, processed
        assert processed.detected_content_type == "application/octet-stream" and not processed.thumbnail_file_id
        assert processed.update_time.ToDatetime() > done.update_time.ToDatetime()
        link = await stub.GetDownloadUrl(rr.GetDownloadUrlRequest(file_id=created.file_id))
        assert link.expire_time.seconds > 0
        assert await download_sha256(link.url) == (200, sha256, size)


async def test_completing_twice_with_the_same_request_id_answers_the_same(postgres_dsn, s3_server, clamd, tmp_path):
    path = tmp_path / "note.txt"
    sha256 = write_random_file(path, 1000)
    # No processing: a retry answers with the file as it is now, which processing would change.
    async with files_service(postgres_dsn, s3_server, clamd.address, processing_concurrency=0) as (_, channel):
        stub = service_pb2_grpc.FileServiceStub(channel)
        created, parts = await upload_file(stub, path, sha256)
        request = complete(created, parts)
        first = await stub.CompleteUpload(request)
        assert await stub.CompleteUpload(request) == first
        # Another request for the same upload: it was completed already.
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await stub.CompleteUpload(complete(created, parts))
        assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_create_upload_is_idempotent(postgres_dsn, s3_server, clamd, tmp_path):
    path = tmp_path / "a.bin"
    sha256 = write_random_file(path, 7 * MiB)
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_pb2_grpc.FileServiceStub(channel)
        request = create_request(path, sha256)
        first = await stub.CreateUpload(request)
        retry = await stub.CreateUpload(request)
        assert (retry.upload_id, retry.file_id, retry.part_size_bytes) == (first.upload_id, first.file_id, first.part_size_bytes)
        assert len(retry.part_urls) == len(first.part_urls) == 2
        assert retry.expire_time == first.expire_time
        # The same request_id for something else is refused.
        different = rr.CreateUploadRequest()
        different.CopyFrom(request)
        different.filename = "b.bin"
        with pytest.raises(grpc.aio.AioRpcError) as reused:
            await stub.CreateUpload(different)
        assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
        # The retry's fresh URLs work for the one upload.
        parts = await put_parts(retry, path)
        done = await stub.CompleteUpload(complete(retry, parts))
        assert done.file.sha256 == sha256


@pytest.mark.parametrize(
    "fields, mentions",
    [
        (dict(size_bytes=2 * 1024**3 + 1), "size_bytes"),
        (dict(size_bytes=0), "size_bytes"),
        (dict(size_bytes=-5), "size_bytes"),
        (dict(sha256="abc"), "sha256"),
        (dict(sha256="A" * 64), "sha256"),
        (dict(filename=""), "filename"),
        (dict(content_type=" "), "content_type"),
        (dict(request_id="not-a-uuid"), "request_id"),
        (dict(owner_user_id="user-42"), "owner_user_id"),
        (dict(owner_user_id=str(uuid.uuid4())[:-1]), "owner_user_id"),
    ],
)
async def test_malformed_uploads_are_refused(postgres_dsn, s3_server, clamd, fields, mentions):
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_pb2_grpc.FileServiceStub(channel)
        request = rr.CreateUploadRequest(
            request_id=str(uuid.uuid4()), filename="f.bin", content_type="image/png", size_bytes=10, sha256="0" * 64
        )
        for name, value in fields.items():
            setattr(request, name, value)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreateUpload(request)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert mentions in refused.value.details()


async def test_a_file_has_the_owner_it_was_uploaded_for_or_none(postgres_dsn, s3_server, clamd, tmp_path):
    owner = str(uuid.uuid4())
    path = tmp_path / "mine.bin"
    sha256 = write_random_file(path, 2000)
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_pb2_grpc.FileServiceStub(channel)
        created, parts = await upload_file(stub, path, sha256, owner_user_id=owner.upper())  # stored canonical
        assert (await get_file(stub, created.file_id)).owner_user_id == owner
        assert (await stub.CompleteUpload(complete(created, parts))).file.owner_user_id == owner
        assert (await settled(stub, created.file_id)).owner_user_id == owner
        # Media a connector imports from a platform belong to no user.
        imported, _ = await upload_file(stub, path, sha256)
        assert (await get_file(stub, imported.file_id)).owner_user_id == ""
    [(stored,)] = await query(postgres_dsn, "SELECT owner_user_id FROM files WHERE file_id = %s", (created.file_id,))
    assert str(stored) == owner


async def test_exactly_2_gib_is_accepted_in_parts_s3_allows(postgres_dsn, s3_server, clamd):
    async with files_service(postgres_dsn, s3_server, clamd.address, part_size_bytes=64 * MiB) as (_, channel):
        stub = service_pb2_grpc.FileServiceStub(channel)
        created = await stub.CreateUpload(rr.CreateUploadRequest(
            request_id=str(uuid.uuid4()), filename="big.mp4", content_type="video/mp4", size_bytes=2 * 1024**3, sha256="0" * 64
        ))
        assert created.part_size_bytes == 64 * MiB and len(created.part_urls) == 32


def test_part_size_grows_to_stay_within_s3s_10000_parts():
    assert part_size_for(2 * 1024**3, 64 * MiB) == 64 * MiB
    assert part_size_for(1000, 1024) == 5 * MiB  # S3's minimum part size
    huge = 100 * 1024**3  # beyond today's 2 GiB limit: the guard holds if the limit grows
    grown = part_size_for(huge, 5 * MiB)
    assert grown > 5 * MiB and part_count(huge, grown) <= 10_000


@pytest.mark.parametrize("mismatch", ["sha256", "size"])
async def test_an_upload_that_is_not_what_was_declared_is_refused_and_deleted(postgres_dsn, s3_server, clamd, tmp_path, mismatch):
    path = tmp_path / "doc.pdf"
    sha256 = write_random_file(path, 3000)
    declared_sha256, declared_size = sha256, 3000
    if mismatch == "sha256":
        declared_sha256 = hashlib.sha256(b"something else").hexdigest()
    else:
        declared_size = 2000  # one part either way; S3 stores all 3000 bytes PUT to it
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_pb2_grpc.FileServiceStub(channel)
        created, parts = await upload_file(stub, path, declared_sha256, declared_size)
        request = complete(created, parts)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CompleteUpload(request)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"{mismatch} mismatch" in refused.value.details()
        assert not await object_exists(s3_server, created.file_id)

        failed = (await stub.GetFile(rr.GetFileRequest(file_id=created.file_id))).file
        assert failed.state == message_pb2.FILE_STATE_FAILED
        assert f"{mismatch} mismatch" in failed.failure_reason
        # A retry does not resurrect it.
        with pytest.raises(grpc.aio.AioRpcError) as retried:
            await stub.CompleteUpload(request)
        assert retried.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_complete_checks_the_parts(postgres_dsn, s3_server, clamd, tmp_path):
    path = tmp_path / "two.bin"
    sha256 = write_random_file(path, 6 * MiB)
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_pb2_grpc.FileServiceStub(channel)
        created, parts = await upload_file(stub, path, sha256)
        for listed in ([parts[0]], [parts[1], parts[0]], [parts[0], parts[0]], []):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.CompleteUpload(complete(created, listed))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, listed
        wrong = [parts[0], message_pb2.CompletedPart(part_number=2, etag='"0123456789abcdef0123456789abcdef"')]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CompleteUpload(complete(created, wrong))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        # The right parts still complete it.
        assert (await stub.CompleteUpload(complete(created, parts))).file.state == message_pb2.FILE_STATE_PROCESSING


async def test_an_expired_download_url_is_refused_by_s3(postgres_dsn, s3_server, clamd, tmp_path):
    path = tmp_path / "pic.png"
    sha256 = write_random_file(path, 5000)
    async with files_service(postgres_dsn, s3_server, clamd.address, download_url_seconds=2) as (_, channel):
        stub = service_pb2_grpc.FileServiceStub(channel)
        created, parts = await upload_file(stub, path, sha256)
        await stub.CompleteUpload(complete(created, parts))
        assert (await settled(stub, created.file_id)).state == message_pb2.FILE_STATE_CLEAN
        link = await stub.GetDownloadUrl(rr.GetDownloadUrlRequest(file_id=created.file_id))
        assert await download_sha256(link.url) == (200, sha256, 5000)
        await asyncio.sleep(3.5)  # past the URL's expiry (S3 signatures count whole seconds)
        status, _, _ = await download_sha256(link.url)
        assert status == 403


async def test_a_download_is_named_typed_from_its_bytes_and_saved_not_rendered(postgres_dsn, s3_server, clamd, tmp_path):
    image = png(8, 8)
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_pb2_grpc.FileServiceStub(channel)
        # Declared as HTML: a browser must neither believe it nor render it from our storage.
        file = await upload_bytes(stub, tmp_path, image, "relatório final.png", "text/html")
        assert (await settled(stub, file.file_id)).state == message_pb2.FILE_STATE_CLEAN
        link = await stub.GetDownloadUrl(rr.GetDownloadUrlRequest(file_id=file.file_id))
        async with aiohttp.ClientSession() as http, http.get(link.url) as answer:
            assert answer.status == 200 and await answer.read() == image
            assert answer.headers["Content-Type"] == "image/png"
            assert answer.headers["Content-Disposition"] == (
                "attachment; filename=\"relat_rio final.png\"; filename*=UTF-8''relat%C3%B3rio%20final.png")


async def test_unknown_files_and_uploads_are_not_found(postgres_dsn, s3_server, clamd):
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_pb2_grpc.FileServiceStub(channel)
        unknown = str(uuid.uuid4())
        for call in (
            stub.GetFile(rr.GetFileRequest(file_id=unknown)),
            stub.GetDownloadUrl(rr.GetDownloadUrlRequest(file_id=unknown)),
            stub.CompleteUpload(rr.CompleteUploadRequest(
                request_id=str(uuid.uuid4()), upload_id=unknown,
                parts=[message_pb2.CompletedPart(part_number=1, etag="x")],
            )),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await call
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as malformed:
            await stub.GetFile(rr.GetFileRequest(file_id="nope"))
        assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_expired_upload_cannot_be_completed_and_fails(postgres_dsn, s3_server, clamd, tmp_path):
    path = tmp_path / "late.bin"
    sha256 = write_random_file(path, 4000)
    async with files_service(postgres_dsn, s3_server, clamd.address, upload_expiry_seconds=2) as (_, channel):
        stub = service_pb2_grpc.FileServiceStub(channel)
        created, parts = await upload_file(stub, path, sha256)
        await asyncio.sleep(2.5)
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await stub.CompleteUpload(complete(created, parts))
        assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "expired" in late.value.details()
        failed = (await stub.GetFile(rr.GetFileRequest(file_id=created.file_id))).file
        assert failed.state == message_pb2.FILE_STATE_FAILED and "expired" in failed.failure_reason
        assert not await object_exists(s3_server, created.file_id)


async def test_completion_resumes_after_s3_assembled_but_the_database_did_not_commit(postgres_dsn, s3_server, clamd, tmp_path):
    """A crash between S3's CompleteMultipartUpload and our commit: the retry verifies what S3 made."""
    path = tmp_path / "crash.bin"
    sha256 = write_random_file(path, 6 * MiB)
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_pb2_grpc.FileServiceStub(channel)
        created, parts = await upload_file(stub, path, sha256)
        [(s3_upload_id,)] = await query(postgres_dsn, "SELECT s3_upload_id FROM files WHERE file_id = %s", (created.file_id,))
        client = s3_server.client()
        await asyncio.to_thread(
            client.complete_multipart_upload, Bucket=s3_server.bucket, Key=f"files/{created.file_id}", UploadId=s3_upload_id,
            MultipartUpload={"Parts": [{"PartNumber": p.part_number, "ETag": p.etag} for p in parts]},
        )
        done = (await stub.CompleteUpload(complete(created, parts))).file
        assert done.state == message_pb2.FILE_STATE_PROCESSING and done.sha256 == sha256
