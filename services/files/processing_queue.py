"""SQL of the processing queue: the files in PROCESSING, claimed by workers under a lease, and
the outcome of each try.

A worker claims files with FOR UPDATE SKIP LOCKED and holds each through a lease
(processing_lease_until, processing_lease_token), renewed while it works; replicas never take
a leased file. If the worker dies, the lease lapses and another one takes the file again. Every
write of an outcome names the lease token: a worker that lost its lease writes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from chat4all.files.v1 import message_pb2
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool

from services.files.store import COLUMNS, FileRow

PROCESSING = message_pb2.FILE_STATE_PROCESSING
FAILED = message_pb2.FILE_STATE_FAILED
CLEAN = message_pb2.FILE_STATE_CLEAN


@dataclass(frozen=True)
class Claimed:
    file: FileRow
    token: uuid.UUID  # the lease: every write about this try names it
    tries: int  # this one included: counted attempts and deferrals alike


@dataclass(frozen=True)
class NewThumbnail:
    """A thumbnail whose object is stored, to be recorded as a CLEAN file with its original."""

    file_id: uuid.UUID
    object_key: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    owner_user_id: uuid.UUID | None


async def claim(pool: AsyncConnectionPool, limit: int, lease_seconds: float, max_attempts: int) -> list[Claimed]:
    """Up to `limit` files that are due, each now leased and counted as an attempt."""
    token = uuid.uuid4()
    async with pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cursor:
        # A try cut short (its worker stopped or crashed) has no outcome; if it was the last
        # one allowed, the file ends here instead of being tried beyond the limit.
        await conn.execute(
            """
            UPDATE files
               SET state = %(failed)s, update_time = now(), processing_lease_token = NULL, processing_lease_until = NULL,
                   failure_reason = 'processing was cut short ' || processing_attempts || ' times (its worker stopped'
                       || ' or crashed)' || CASE WHEN processing_error = '' THEN '' ELSE '; last error: ' || processing_error END
             WHERE state = %(processing)s AND processing_lease_token IS NOT NULL AND processing_lease_until < now()
               AND processing_attempts >= %(max)s
            """,
            {"failed": FAILED, "processing": PROCESSING, "max": max_attempts},
        )
        rows = await (
            await cursor.execute(
                f"""
                WITH due AS (
                    SELECT file_id FROM files
                     WHERE state = %(processing)s AND (processing_lease_until IS NULL OR processing_lease_until <= now())
                     ORDER BY processing_lease_until NULLS FIRST, update_time
                     LIMIT %(limit)s
                       FOR UPDATE SKIP LOCKED
                )
                UPDATE files f
                   SET processing_attempts = f.processing_attempts + 1, processing_lease_token = %(token)s,
                       processing_lease_until = now() + make_interval(secs => %(lease)s)
                  FROM due
                 WHERE f.file_id = due.file_id
                RETURNING {", ".join(f"f.{column.strip()}" for column in COLUMNS.split(","))},
                          f.processing_attempts + f.processing_deferrals AS tries
                """,
                {"processing": PROCESSING, "limit": limit, "token": token, "lease": lease_seconds},
            )
        ).fetchall()
    return [Claimed(FileRow(**{k: v for k, v in row.items() if k != "tries"}), token, row["tries"]) for row in rows]


async def renew(pool: AsyncConnectionPool, file_id: uuid.UUID, token: uuid.UUID, lease_seconds: float) -> bool:
    """Extend the lease; False if it was lost (it lapsed and another worker took the file)."""
    async with pool.connection() as conn:
        updated = await conn.execute(
            "UPDATE files SET processing_lease_until = now() + make_interval(secs => %s)"
            " WHERE file_id = %s AND processing_lease_token = %s AND state = %s",
            (lease_seconds, file_id, token, PROCESSING),
        )
        return updated.rowcount == 1


async def finish(
    pool: AsyncConnectionPool, file_id: uuid.UUID, token: uuid.UUID, state: int, detected_content_type: str,
    failure_reason: str = "", thumbnail: NewThumbnail | None = None,
) -> bool:
    """Settle the file (CLEAN, QUARANTINED or FAILED) with what processing found, and store its
    thumbnail's row; False, and nothing written, if the lease was lost."""
    try:
        async with pool.connection() as conn, conn.transaction():
            if thumbnail is not None:
                t = thumbnail
                await conn.execute(
                    "INSERT INTO files (file_id, upload_id, s3_upload_id, object_key, filename, declared_content_type,"
                    " detected_content_type, size_bytes, sha256, part_size_bytes, state, expire_time, owner_user_id,"
                    " owner_client_id)"
                    # Never uploaded: its upload fields are placeholders nothing reads. Same client as the original.
                    " SELECT %s, %s, '', %s, %s, %s, %s, %s, %s, %s, %s, now(), %s, owner_client_id FROM files WHERE file_id = %s",
                    (t.file_id, uuid.uuid4(), t.object_key, t.filename, t.content_type, t.content_type,
                     t.size_bytes, t.sha256, t.size_bytes, CLEAN, t.owner_user_id, file_id),
                )
            updated = await conn.execute(
                """
                UPDATE files
                   SET state = %s, detected_content_type = %s, failure_reason = %s, thumbnail_file_id = %s,
                       update_time = now(), processing_lease_token = NULL, processing_lease_until = NULL
                 WHERE file_id = %s AND processing_lease_token = %s AND state = %s
                """,
                (state, detected_content_type, failure_reason, thumbnail.file_id if thumbnail else None,
                 file_id, token, PROCESSING),
            )
            if updated.rowcount != 1:
                raise _LeaseLost  # and the thumbnail's row goes with the rollback
    except _LeaseLost:
        return False
    return True


class _LeaseLost(Exception):
    pass


async def retry_later(
    pool: AsyncConnectionPool, file_id: uuid.UUID, token: uuid.UUID, error: str, delay_seconds: float,
    max_attempts: int, counted: bool,
) -> int | None:
    """Put the file back in the queue until `delay_seconds` from now, with `error` as its last
    one. A counted try that was the last allowed makes it FAILED instead; one not counted (clamd
    or S3 unreachable) gives its attempt back. The file's state, or None if the lease was lost."""
    async with pool.connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
        row = await (
            await cursor.execute(
                """
                UPDATE files
                   SET processing_attempts = processing_attempts - CASE WHEN %(counted)s THEN 0 ELSE 1 END,
                       processing_deferrals = processing_deferrals + CASE WHEN %(counted)s THEN 0 ELSE 1 END,
                       processing_error = %(error)s, processing_lease_token = NULL,
                       processing_lease_until = now() + make_interval(secs => %(delay)s),
                       state = CASE WHEN %(counted)s AND processing_attempts >= %(max)s THEN %(failed)s ELSE state END,
                       failure_reason = CASE WHEN %(counted)s AND processing_attempts >= %(max)s
                           THEN 'processing failed ' || processing_attempts || ' times; last error: ' || %(error)s
                           ELSE failure_reason END,
                       update_time = CASE WHEN %(counted)s AND processing_attempts >= %(max)s THEN now() ELSE update_time END
                 WHERE file_id = %(id)s AND processing_lease_token = %(token)s AND state = %(processing)s
                RETURNING state
                """,
                {"counted": counted, "error": error, "delay": delay_seconds, "max": max_attempts, "failed": FAILED,
                 "id": file_id, "token": token, "processing": PROCESSING},
            )
        ).fetchone()
        return None if row is None else row[0]


async def release(pool: AsyncConnectionPool, file_id: uuid.UUID, token: uuid.UUID) -> None:
    """Give the file back untouched (this worker is stopping): its attempt is not counted."""
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE files SET processing_attempts = processing_attempts - 1, processing_lease_token = NULL,"
            " processing_lease_until = NULL WHERE file_id = %s AND processing_lease_token = %s AND state = %s",
            (file_id, token, PROCESSING),
        )


async def seconds_until_due(pool: AsyncConnectionPool) -> float | None:
    """How long until the next file in PROCESSING can be taken (its retry time, or the end of
    a lease), by the database's clock; None if no file is in PROCESSING."""
    async with pool.connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
        row = await (
            await cursor.execute(
                "SELECT extract(epoch FROM min(coalesce(processing_lease_until, now())) - now()) FROM files WHERE state = %s",
                (PROCESSING,),
            )
        ).fetchone()
    return None if row is None or row[0] is None else float(row[0])
