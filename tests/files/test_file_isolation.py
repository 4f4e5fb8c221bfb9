"""Files belong to the client whose call created the upload (x-chat4all-client-id, which the front
door sets): another client's file or upload is NOT_FOUND with the answer an unknown id gets, and
nothing of it comes back; a thumbnail belongs to its original's client; internal calls (no
client id: connectors importing media, the router) reach every file."""

from __future__ import annotations

import hashlib
import uuid

import grpc
from chat4all.files.v1 import message_pb2, request_response_pb2 as rr

from tests.files.client import complete, files_service, put_parts, service_stub, settled, upload_bytes, upload_file
from tests.services.clients import AsClient, not_found, rpc_error
from tests.services.servers import query
from tests.support.uploads import png

F = message_pb2.FileState
A, B = "client-a", "client-b"


async def test_a_clients_files_are_unknown_to_another_client(postgres_dsn, s3_server, clamd, tmp_path):
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_stub(channel)
        a, b = AsClient(stub, A), AsClient(stub, B)
        file = await settled(a, (await upload_bytes(a, tmp_path, png(400, 300), "photo.png", "image/png")).file_id)
        assert file.state == F.FILE_STATE_CLEAN and file.thumbnail_file_id

        missing = str(uuid.uuid4())
        for ask in (
            lambda file_id: b.GetFile(rr.GetFileRequest(file_id=file_id)),
            lambda file_id: b.GetDownloadUrl(rr.GetDownloadUrlRequest(file_id=file_id)),
        ):
            unknown = await not_found(ask(missing))
            for theirs in (file.file_id, file.thumbnail_file_id):  # the thumbnail is A's too
                assert await not_found(ask(theirs)) == unknown.replace(missing, theirs)
        # A and internal callers read both.
        for caller in (a, stub):
            for file_id in (file.file_id, file.thumbnail_file_id):
                assert (await caller.GetFile(rr.GetFileRequest(file_id=file_id))).file.state == F.FILE_STATE_CLEAN
                assert (await caller.GetDownloadUrl(rr.GetDownloadUrlRequest(file_id=file_id))).url
        assert await query(postgres_dsn, "SELECT owner_client_id, count(*) FROM files GROUP BY 1") == [(A, 2)]


async def test_another_client_cannot_complete_an_upload_nor_reuse_its_request(postgres_dsn, s3_server, clamd, tmp_path):
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_stub(channel)
        a, b = AsClient(stub, A), AsClient(stub, B)
        path = tmp_path / "notes.txt"
        path.write_bytes(b"for A only")
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        created, parts = await upload_file(a, path, sha256)

        missing = rr.CreateUploadResponse(upload_id=str(uuid.uuid4()))
        unknown = await not_found(b.CompleteUpload(complete(missing, parts)))
        theirs = await not_found(b.CompleteUpload(complete(created, parts)))
        assert theirs == unknown.replace(missing.upload_id, created.upload_id)
        # B's attempt left the upload as it was: A completes it.
        assert (await a.CompleteUpload(complete(created, parts))).file.file_id == created.file_id

        # A request id is per client: B's identical request is not answered with A's upload.
        request = rr.CreateUploadRequest(
            request_id=str(uuid.uuid4()), filename="x.txt", content_type="text/plain", size_bytes=3, sha256="0" * 64
        )
        first = await a.CreateUpload(request)
        error = await rpc_error(b.CreateUpload(request))
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS and first.upload_id not in error.details()
        assert (await a.CreateUpload(request)).upload_id == first.upload_id


async def test_what_internal_calls_upload_is_no_clients(postgres_dsn, s3_server, clamd, tmp_path):
    async with files_service(postgres_dsn, s3_server, clamd.address) as (_, channel):
        stub = service_stub(channel)
        imported = await upload_bytes(stub, tmp_path, b"media a connector imported", "voice.ogg", "audio/ogg")
        await not_found(AsClient(stub, A).GetFile(rr.GetFileRequest(file_id=imported.file_id)))
        assert (await stub.GetFile(rr.GetFileRequest(file_id=imported.file_id))).file.file_id == imported.file_id
        # A client's own upload, completed part by part, is its own.
        path = tmp_path / "mine.bin"
        path.write_bytes(b"mine")
        created = await AsClient(stub, A).CreateUpload(
            rr.CreateUploadRequest(
                request_id=str(uuid.uuid4()), filename=path.name, content_type="application/octet-stream",
                size_bytes=4, sha256=hashlib.sha256(b"mine").hexdigest(),
            )
        )
        await AsClient(stub, A).CompleteUpload(complete(created, await put_parts(created, path)))
        assert await query(postgres_dsn, "SELECT owner_client_id, count(*) FROM files GROUP BY 1 ORDER BY 1") == [("", 1), (A, 1)]
