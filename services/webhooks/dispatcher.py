"""Sends the delivery queue out: claims the lane heads that are due, POSTs each one, and
records the outcome: DELIVERED on 2xx, otherwise PENDING again after a backoff, or
DEAD_LETTERED once the attempts run out. A recorded outcome frees the lane's next event.

It wakes at once when this process queues an event or finishes an attempt, at the next retry
time, and at least every `delivery_poll_seconds` for work queued by other replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.webhooks import delivery_queue, metrics, sender
from services.webhooks.backoff import retry_delay
from services.webhooks.delivery_queue import DEAD_LETTERED, DELIVERED, PENDING, Attempt, Outcome
from services.webhooks.settings import WebhookSettings

log = logging.getLogger("chat4all.webhooks.dispatcher")

_STORE_ERRORS = (psycopg.Error, PoolTimeout)


class Dispatcher:
    def __init__(self, pool: AsyncConnectionPool, session: aiohttp.ClientSession, settings: WebhookSettings) -> None:
        self.pool, self.session, self.settings = pool, session, settings
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task] = set()
        self._loop: asyncio.Task | None = None
        # Checked by the loop as well as cancelling it: a cancellation that lands while a query
        # is being cancelled, or as a wait_for times out, can be swallowed (Python 3.11).
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="webhook dispatcher")

    async def stop(self) -> None:
        """Claim nothing more and let the attempts in flight finish (their outcome is recorded);
        one that outlasts a POST's timeout is cut short and made again after its lease."""
        self._stopping = True
        self._wake.set()
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=self.settings.delivery_timeout_seconds + 1)
        for task in self._in_flight:
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _run(self) -> None:
        s = self.settings
        while not self._stopping:
            self._wake.clear()
            free = s.delivery_concurrency - len(self._in_flight)
            claimed: list[Attempt] = []
            wait = s.delivery_poll_seconds
            try:
                if free > 0:
                    claimed = await delivery_queue.claim_due(self.pool, free, s.delivery_lease_seconds, s.delivery_max_attempts)
                if 0 < len(claimed) == free:
                    wait = 0.0  # probably more due; a finished attempt wakes us anyway
                elif free > 0:
                    due = await delivery_queue.seconds_until_due(self.pool)
                    if due is not None:
                        wait = min(wait, max(due, 0.0))
            except _STORE_ERRORS as error:
                log.warning("cannot read the delivery queue", extra={"error": str(error)})
            except Exception:  # noqa: BLE001 - a bug must not stop every delivery for good
                log.exception("dispatcher loop failed; going on")
            for attempt in claimed:
                task = asyncio.create_task(self._attempt(attempt), name=f"webhook delivery {attempt.delivery_id}")
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if wait > 0 or free <= 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait if free > 0 else None)

    async def _attempt(self, attempt: Attempt) -> None:
        s = self.settings
        outcome = await sender.post(self.session, attempt, s.delivery_timeout_seconds, s.deliver_to_private_networks)
        metrics.ATTEMPT_SECONDS.observe(outcome.seconds)
        metrics.ATTEMPTS.labels(_outcome_label(outcome)).inc()
        retry_in = 0.0
        if outcome.accepted:
            state = DELIVERED
        elif attempt.number >= s.delivery_max_attempts:
            state = DEAD_LETTERED
        else:
            state = PENDING
            retry_in = retry_delay(attempt.number, s.delivery_backoff_base_seconds, s.delivery_backoff_max_seconds)
        try:
            recorded = await delivery_queue.record(self.pool, attempt, outcome, state, retry_in)
        except Exception as error:  # noqa: BLE001 - logged; the task has nobody else to tell
            # Unrecorded: the lease lapses and the event is sent again (receivers deduplicate).
            log.warning("cannot record a webhook attempt", extra={"delivery_id": str(attempt.delivery_id), "error": repr(error)})
            return
        if recorded and state != PENDING:
            metrics.DELIVERIES_FINISHED.labels("delivered" if state == DELIVERED else "dead_lettered").inc()
        if state == DEAD_LETTERED:
            log.warning(
                "webhook delivery dead-lettered",
                extra={"delivery_id": str(attempt.delivery_id), "webhook_id": str(attempt.webhook_id), "error": outcome.error},
            )
        self.wake()  # the lane's next event may go now


def _outcome_label(outcome: Outcome) -> str:
    if outcome.accepted:
        return "accepted"
    return "rejected" if outcome.http_status else "unreachable"
