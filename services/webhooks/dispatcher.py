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
from psycopg_pool import AsyncConnectionPool

from services.runtime.claim_loop import ClaimLoop
from services.webhooks import delivery_queue, metrics, sender
from services.webhooks.backoff import retry_delay
from services.webhooks.delivery_queue import DEAD_LETTERED, DELIVERED, PENDING, Attempt, Outcome
from services.webhooks.settings import WebhookSettings

log = logging.getLogger("chat4all.webhooks.dispatcher")


class Dispatcher:
    def __init__(self, pool: AsyncConnectionPool, session: aiohttp.ClientSession, settings: WebhookSettings) -> None:
        self.pool, self.session, self.settings = pool, session, settings
        s = settings
        self._claims: ClaimLoop[Attempt] = ClaimLoop(
            what="delivery queue", concurrency=s.delivery_concurrency, poll_seconds=s.delivery_poll_seconds,
            claim=lambda n: delivery_queue.claim_due(pool, n, s.delivery_lease_seconds, s.delivery_max_attempts),
            seconds_until_due=lambda: delivery_queue.seconds_until_due(pool),
            handle=self._attempt, task_name=lambda attempt: f"webhook delivery {attempt.delivery_id}", log=log,
        )
        self._loop: asyncio.Task | None = None

    def wake(self) -> None:
        self._claims.wake.set()

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._claims.run(), name="webhook dispatcher")

    async def stop(self) -> None:
        """Claim nothing more and let the attempts in flight finish (their outcome is recorded);
        one that outlasts a POST's timeout is cut short and made again after its lease."""
        self._claims.stopping = True
        self._claims.wake.set()
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        in_flight = list(self._claims.in_flight)
        if in_flight:
            await asyncio.wait(in_flight, timeout=self.settings.delivery_timeout_seconds + 1)
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)

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
