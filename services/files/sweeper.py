"""The upload sweeper: uploads left UPLOADING past their expire_time (a client that never called
CompleteUpload) have their multipart upload aborted in S3, which deletes the parts and stops the
part URLs from working, and become FAILED.

Every replica sweeps every C4A_SWEEP_INTERVAL_SECONDS. Rows are locked with SKIP LOCKED: one that
a concurrent CompleteUpload holds is left to it (which then finds it expired and fails it
itself), one that another replica is sweeping is left to that replica; a CompleteUpload arriving
during a sweep waits for it, then finds the file FAILED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from chat4all.files.v1 import message_pb2
from psycopg_pool import PoolTimeout

from services.files import metrics
from services.files.object_store import ObjectStore
from services.files.store import FileStore
from services.runtime.errors import Unavailable

log = logging.getLogger("chat4all.files.sweeper")

# Uploads per transaction: few enough that the row locks and S3 calls of one batch stay short.
_BATCH = 50


class UploadSweeper:
    def __init__(self, store: FileStore, objects: ObjectStore, interval_seconds: float) -> None:
        self.store, self.objects, self.interval = store, objects, interval_seconds
        self._task: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="files upload sweeper")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.sweep()
            except (psycopg.Error, PoolTimeout, Unavailable) as error:
                log.warning("cannot sweep expired uploads now", extra={"error": str(error)})
            except Exception:  # noqa: BLE001 - a bug must not stop sweeping for good
                log.exception("sweeping expired uploads failed; going on")
            await asyncio.sleep(self.interval)

    async def sweep(self) -> int:
        """Abort and fail every expired upload; returns how many."""
        swept = 0
        while True:
            async with self.store.transaction() as tx:
                expired = await tx.lock_expired_uploads(_BATCH)
                for file in expired:
                    await self.objects.abort_multipart(file.object_key, file.s3_upload_id)
                    await tx.set_state(
                        file.file_id, message_pb2.FILE_STATE_FAILED,
                        f"upload expired at {file.expire_time.isoformat()} before it was completed; its parts were deleted",
                    )
            for file in expired:
                log.info("expired upload swept", extra={"file_id": str(file.file_id), "upload_id": str(file.upload_id)})
            metrics.UPLOADS_EXPIRED.inc(len(expired))
            swept += len(expired)
            if len(expired) < _BATCH:
                return swept
