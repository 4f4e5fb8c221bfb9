"""The files table and the request log (PostgreSQL).

Changes run in a transaction that first claims the request_id in `file_requests`, so a retry, or
a concurrent duplicate waiting on the claimed row, answers from the first request's file.

Every file belongs to a client (`owner_client_id`, services/runtime/tenancy.py); the servicer
answers another client's file or upload as it answers an unknown one.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from chat4all.files.v1 import message_pb2
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from services.runtime.errors import AlreadyExists, NotFound

COLUMNS = (
    "file_id, upload_id, s3_upload_id, object_key, filename, declared_content_type, detected_content_type,"
    " size_bytes, sha256, part_size_bytes, state, failure_reason, create_time, update_time, expire_time,"
    " owner_user_id, thumbnail_file_id, owner_client_id"
)
# Delivered when the transaction that completed an upload commits: wakes the processing workers.
PROCESSING_CHANNEL = "chat4all_files_processing"


@dataclass(frozen=True)
class FileRow:
    file_id: uuid.UUID
    upload_id: uuid.UUID
    s3_upload_id: str
    object_key: str
    filename: str
    declared_content_type: str
    detected_content_type: str
    size_bytes: int
    sha256: str
    part_size_bytes: int
    state: int
    failure_reason: str
    create_time: datetime
    update_time: datetime
    expire_time: datetime
    owner_user_id: uuid.UUID | None
    thumbnail_file_id: uuid.UUID | None
    owner_client_id: str  # tenancy: '' for a file an internal call created

    def to_proto(self) -> message_pb2.File:
        file = message_pb2.File(
            file_id=str(self.file_id), filename=self.filename, declared_content_type=self.declared_content_type,
            detected_content_type=self.detected_content_type, size_bytes=self.size_bytes, sha256=self.sha256,
            state=self.state, failure_reason=self.failure_reason,
            owner_user_id=str(self.owner_user_id or ""), thumbnail_file_id=str(self.thumbnail_file_id or ""),
        )
        file.create_time.FromDatetime(self.create_time)
        file.update_time.FromDatetime(self.update_time)
        return file


class FileTransaction:
    """One transaction's view of the tables; made by FileStore.transaction()."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def claim_request(self, request_id: uuid.UUID, method: str, digest: bytes, file_id: uuid.UUID) -> uuid.UUID | None:
        """Claim request_id for this request; returns the file of an earlier identical request."""
        cursor = await self.conn.execute(
            "INSERT INTO file_requests (request_id, method, request_hash, file_id) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (request_id) DO NOTHING",
            (request_id, method, digest, file_id),
        )
        if cursor.rowcount == 1:
            return None
        # A new statement sees the row committed by the request we waited on.
        row = await (
            await self.conn.execute(
                "SELECT method, request_hash, file_id FROM file_requests WHERE request_id = %s", (request_id,)
            )
        ).fetchone()
        assert row is not None
        if row["method"] != method or bytes(row["request_hash"]) != digest:
            raise AlreadyExists(f"request_id {request_id} was already used for a different request ({row['method']})")
        return row["file_id"]

    async def insert_upload(
        self, file_id: uuid.UUID, upload_id: uuid.UUID, s3_upload_id: str, object_key: str, filename: str,
        content_type: str, size_bytes: int, sha256: str, part_size_bytes: int, expire_time: datetime,
        owner_user_id: uuid.UUID | None, owner_client_id: str,
    ) -> FileRow:
        row = await (
            await self.conn.execute(
                "INSERT INTO files (file_id, upload_id, s3_upload_id, object_key, filename, declared_content_type,"
                " size_bytes, sha256, part_size_bytes, state, expire_time, owner_user_id, owner_client_id)"
                f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}",
                (file_id, upload_id, s3_upload_id, object_key, filename, content_type, size_bytes, sha256,
                 part_size_bytes, message_pb2.FILE_STATE_UPLOADING, expire_time, owner_user_id, owner_client_id),
            )
        ).fetchone()
        return FileRow(**row)

    async def file(self, file_id: uuid.UUID) -> FileRow:
        row = await (await self.conn.execute(f"SELECT {COLUMNS} FROM files WHERE file_id = %s", (file_id,))).fetchone()
        if row is None:
            raise NotFound(f"file_id: no file {file_id}")
        return FileRow(**row)

    async def lock_upload(self, upload_id: uuid.UUID) -> FileRow:
        """The upload's file, locked: two CompleteUpload calls for one upload take turns."""
        row = await (
            await self.conn.execute(f"SELECT {COLUMNS} FROM files WHERE upload_id = %s FOR UPDATE", (upload_id,))
        ).fetchone()
        if row is None:
            raise NotFound(f"upload_id: no upload {upload_id}")
        return FileRow(**row)

    async def lock_expired_uploads(self, limit: int) -> list[FileRow]:
        """Uploads still UPLOADING past their expire_time, locked. SKIP LOCKED: one that a
        CompleteUpload (or another replica's sweeper) holds is left to it."""
        rows = await (
            await self.conn.execute(
                f"SELECT {COLUMNS} FROM files WHERE state = %s AND expire_time < now()"
                " ORDER BY expire_time LIMIT %s FOR UPDATE SKIP LOCKED",
                (message_pb2.FILE_STATE_UPLOADING, limit),
            )
        ).fetchall()
        return [FileRow(**row) for row in rows]

    async def notify_processing(self, file_id: uuid.UUID) -> None:
        """Tell the processing workers, once this transaction commits, that a file awaits them."""
        await self.conn.execute("SELECT pg_notify(%s, %s)", (PROCESSING_CHANNEL, str(file_id)))

    async def set_state(self, file_id: uuid.UUID, state: int, failure_reason: str = "") -> FileRow:
        row = await (
            await self.conn.execute(
                f"UPDATE files SET state = %s, failure_reason = %s, update_time = now() WHERE file_id = %s RETURNING {COLUMNS}",
                (state, failure_reason, file_id),
            )
        ).fetchone()
        return FileRow(**row)


class FileStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[FileTransaction]:
        async with self.pool.connection() as conn, conn.transaction():
            conn.row_factory = dict_row
            yield FileTransaction(conn)

    async def get(self, file_id: uuid.UUID) -> FileRow:
        async with self.transaction() as tx:
            return await tx.file(file_id)

    async def set_state(self, file_id: uuid.UUID, state: int, failure_reason: str = "") -> FileRow:
        async with self.transaction() as tx:
            return await tx.set_state(file_id, state, failure_reason)
