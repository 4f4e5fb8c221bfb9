"""The loop of a worker that claims leased work from a PostgreSQL queue (SKIP LOCKED claims
with a lease, so replicas share it and a crashed one's work is taken again after the lease).

Each round claims as much as there are free slots, starts a task per item, then waits: not at
all when the claim filled every slot (more is probably due), else until the next item falls
due, the poll interval passes, or something wakes it (a NOTIFY, a finished task).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import psycopg
from psycopg_pool import PoolTimeout

Item = TypeVar("Item")
# The store not answering: a warning, and the next round tries again.
STORE_ERRORS = (psycopg.Error, PoolTimeout)


class ClaimLoop(Generic[Item]):
    def __init__(
        self,
        *,
        what: str,  # "processing queue", for the log
        concurrency: int,
        poll_seconds: float,
        claim: Callable[[int], Awaitable[Sequence[Item]]],  # at most n items, leased
        seconds_until_due: Callable[[], Awaitable[float | None]],
        handle: Callable[[Item], Awaitable[None]],
        task_name: Callable[[Item], str],
        log: logging.Logger,
        wake_when_done: bool = False,  # a finished task frees a slot: claim again at once
    ) -> None:
        self.what, self.concurrency, self.poll_seconds = what, concurrency, poll_seconds
        self._claim, self._seconds_until_due, self._handle, self._task_name = claim, seconds_until_due, handle, task_name
        self._log, self._wake_when_done = log, wake_when_done
        self.wake = asyncio.Event()
        self.in_flight: set[asyncio.Task] = set()
        # Checked as well as cancelling the loop: a cancellation that lands while a query is
        # being cancelled, or as a wait_for times out, can be swallowed (Python 3.11).
        self.stopping = False

    async def run(self) -> None:
        while not self.stopping:
            self.wake.clear()
            free = self.concurrency - len(self.in_flight)
            claimed: Sequence[Item] = []
            wait = self.poll_seconds
            try:
                if free > 0:
                    claimed = await self._claim(free)
                if 0 < len(claimed) == free:
                    wait = 0.0  # probably more due; a finished item wakes us anyway
                elif free > 0:
                    due = await self._seconds_until_due()
                    if due is not None:
                        wait = min(wait, max(due, 0.0))
            except STORE_ERRORS as error:
                self._log.warning(f"cannot read the {self.what}", extra={"error": str(error)})
            except Exception:  # noqa: BLE001 - a bug must not stop the work for good
                self._log.exception(f"{self.what} loop failed; going on")
            for item in claimed:
                task = asyncio.create_task(self._handle(item), name=self._task_name(item))
                self.in_flight.add(task)
                task.add_done_callback(self._done)
            if wait > 0 or free <= 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait if free > 0 else None)

    def _done(self, task: asyncio.Task) -> None:
        self.in_flight.discard(task)
        if self._wake_when_done:
            self.wake.set()
