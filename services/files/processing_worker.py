"""The processing worker of a files replica: takes files in PROCESSING from the queue, runs
processing.py on each (up to C4A_PROCESSING_CONCURRENCY at once) and records the outcome.

Event-driven: CompleteUpload's transaction NOTIFYs `chat4all_files_processing` and the worker
LISTENs on a connection of its own, so a completed upload is taken at once. It also wakes at
the next retry time and at least every C4A_PROCESSING_POLL_SECONDS, which catches up with
notifications lost while it was not listening (restarts, a dropped connection).

Failures: an unreachable clamd or S3 is not the file's fault; the file stays PROCESSING and is
tried again with a growing wait (up to C4A_PROCESSING_RETRY_MAX_SECONDS), however long the
outage, and never counts as an attempt. Any other failure (clamd refusing the stream or
hanging up, the object gone, a bug) is a failed attempt, tried again the same way; after
C4A_PROCESSING_MAX_ATTEMPTS (tries cut short by a crash included) the file is FAILED with the
last error. Nothing but a clean verdict makes a file CLEAN.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

import psycopg
from chat4all.files.v1 import message_pb2
from psycopg_pool import AsyncConnectionPool

from services.files import metrics, processing_queue
from services.files.object_store import ObjectMissing, ObjectStore
from services.files.processing import FileProcessing
from services.files.processing_queue import Claimed
from services.files.scanning import ScanFailed
from services.files.settings import FileSettings
from services.files.store import PROCESSING_CHANNEL
from services.runtime.claim_loop import STORE_ERRORS, ClaimLoop
from services.runtime.errors import Unavailable

log = logging.getLogger("chat4all.files.processing")

_STATE_LABELS = {
    message_pb2.FILE_STATE_CLEAN: "clean", message_pb2.FILE_STATE_QUARANTINED: "quarantined", message_pb2.FILE_STATE_FAILED: "failed",
}


def retry_delay(tries: int, base: float, cap: float) -> float:
    """Exponential backoff with equal jitter: files that failed together do not return together."""
    ceiling = min(cap, base * 2.0 ** min(max(tries, 1) - 1, 30))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class ProcessingWorker:
    def __init__(self, pool: AsyncConnectionPool, objects: ObjectStore, processing: FileProcessing, settings: FileSettings) -> None:
        self.pool, self.objects, self.processing, self.settings = pool, objects, processing, settings
        s = settings
        self._claims: ClaimLoop[Claimed] = ClaimLoop(
            what="processing queue", concurrency=s.processing_concurrency, poll_seconds=s.processing_poll_seconds,
            claim=lambda n: processing_queue.claim(pool, n, s.processing_lease_seconds, s.processing_max_attempts),
            seconds_until_due=lambda: processing_queue.seconds_until_due(pool),
            handle=self._process, task_name=lambda item: f"processing {item.file.file_id}", log=log,
            wake_when_done=True,
        )
        self._listening = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._listen(), name="files processing listener"))
        # Listening before the first claim: nothing completed from here on waits for the poll.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), 10)
        self._tasks.append(asyncio.create_task(self._claims.run(), name="files processing"))

    async def stop(self) -> None:
        """Claim nothing more; files being processed are given back (not counted as attempts)
        for another replica or the next start: a 2 GiB scan would outlast any shutdown grace."""
        self._claims.stopping = True
        in_flight = list(self._claims.in_flight)
        for task in [*self._tasks, *in_flight]:
            task.cancel()
        await asyncio.gather(*self._tasks, *in_flight, return_exceptions=True)

    async def _listen(self) -> None:
        while not self._claims.stopping:
            try:
                async with await psycopg.AsyncConnection.connect(self.settings.postgres_dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {PROCESSING_CHANNEL}")
                    self._listening.set()
                    self._claims.wake.set()  # catch up with what completed while nobody listened
                    async for _ in conn.notifies():
                        self._claims.wake.set()
            except psycopg.Error as error:
                log.warning("not listening for completed uploads; polling until back", extra={"error": str(error)})
            except Exception:  # noqa: BLE001 - the poll keeps working; listen again
                log.exception("listening for completed uploads failed; polling until back")
            finally:
                self._listening.clear()
            await asyncio.sleep(1)

    async def _process(self, item: Claimed) -> None:
        file_id, about = item.file.file_id, {"file_id": str(item.file.file_id), "try": item.tries}
        keeper = asyncio.create_task(self._keep_lease(item, asyncio.current_task()))
        started = time.monotonic()
        try:
            try:
                outcome = await self.processing.process(item.file)
            except Unavailable as error:
                await self._retry(item, str(error), counted=False)
                return
            except (ScanFailed, ObjectMissing) as error:
                log.warning("processing failed", extra={**about, "error": str(error)})
                await self._retry(item, str(error), counted=True)
                return
            except Exception as error:  # noqa: BLE001 - a failed attempt, whatever went wrong
                log.exception("processing failed", extra=about)
                await self._retry(item, f"{type(error).__name__}: {error}", counted=True)
                return
            finished = await processing_queue.finish(
                self.pool, file_id, item.token, outcome.state, outcome.detected_content_type, outcome.failure_reason,
                outcome.thumbnail,
            )
            if not finished:
                log.warning("processing lease lost before the outcome was recorded", extra=about)
                if outcome.thumbnail is not None:
                    await self.objects.delete(outcome.thumbnail.object_key)
                return
            metrics.PROCESSING_SECONDS.observe(time.monotonic() - started)
            metrics.FILES_SETTLED.labels(_STATE_LABELS[outcome.state]).inc()
            if outcome.failure_reason:
                log.warning("file quarantined", extra={**about, "reason": outcome.failure_reason})
        except asyncio.CancelledError:
            # Stopping, or the lease was lost: give the file back (a no-op if another worker has it).
            with contextlib.suppress(Exception):
                await processing_queue.release(self.pool, file_id, item.token)
            raise
        except Exception as error:  # noqa: BLE001 - unrecorded: the lease lapses and the file is tried again
            log.warning("cannot record the processing outcome", extra={**about, "error": repr(error)})
        finally:
            keeper.cancel()

    async def _retry(self, item: Claimed, error: str, counted: bool) -> None:
        s = self.settings
        delay = retry_delay(item.tries, s.processing_retry_base_seconds, s.processing_retry_max_seconds)
        state = await processing_queue.retry_later(
            self.pool, item.file.file_id, item.token, error, delay, s.processing_max_attempts, counted
        )
        metrics.PROCESSING_RETRIES.labels("failed" if counted else "unavailable").inc()
        if state == message_pb2.FILE_STATE_FAILED:
            metrics.FILES_SETTLED.labels("failed").inc()
            log.warning("processing failed for good", extra={"file_id": str(item.file.file_id), "error": error})
        elif state is not None:
            log.info(
                "processing put off" if not counted else "processing will be tried again",
                extra={"file_id": str(item.file.file_id), "error": error, "retry_in_seconds": round(delay, 1)},
            )

    async def _keep_lease(self, item: Claimed, processing: asyncio.Task) -> None:
        """Renew the lease while the file is processed; stop the processing if it was lost."""
        s = self.settings
        while True:
            await asyncio.sleep(s.processing_lease_seconds / 3)
            try:
                if not await processing_queue.renew(self.pool, item.file.file_id, item.token, s.processing_lease_seconds):
                    log.warning("processing lease lost; stopping", extra={"file_id": str(item.file.file_id)})
                    processing.cancel()
                    return
            except STORE_ERRORS as error:
                log.warning("cannot renew a processing lease", extra={"file_id": str(item.file.file_id), "error": str(error)})
