"""Follows MessageService's streams for every source this replica holds, and queues each event
for its webhook: StreamConversationEvents for a conversation source, StreamUserEvents for a
user source.

A supervisor renews this replica's leases every `source_scan_seconds` (at once when a webhook
is created or deleted here), starts a follower for each source it newly holds, and stops the
followers of sources it no longer holds. A follower resumes from the cursor stored with the
last event it queued, so a restart or a takeover neither loses nor repeats an event; a broken
stream is reopened from there with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator, Callable

import grpc
import psycopg
from chat4all.messaging.v1 import message_pb2 as messaging_pb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.runtime.errors import ServiceError
from services.webhooks import metrics, sources
from services.webhooks.messaging_client import MessagingClient
from services.webhooks.settings import WebhookSettings
from services.webhooks.sources import ConversationSource, Source, SourceLost, UserSource

log = logging.getLogger("chat4all.webhooks.followers")

_RECONNECT_FIRST_SECONDS = 0.5
_RECONNECT_MAX_SECONDS = 10.0
_STORE_ERRORS = (psycopg.Error, PoolTimeout)


def replica_name() -> str:
    """Who holds a lease: unique per process, readable by an operator."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Followers:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        messaging: MessagingClient,
        settings: WebhookSettings,
        on_queued: Callable[[], None],
        owner: str | None = None,
    ) -> None:
        self.pool, self.messaging, self.settings, self.on_queued = pool, messaging, settings, on_queued
        self.owner = owner or replica_name()
        self._followers: dict[tuple, asyncio.Task] = {}
        self._rescan = asyncio.Event()
        self._supervisor: asyncio.Task | None = None
        # Checked by the loop as well as cancelling it: a cancellation that lands while a query
        # is being cancelled, or as a wait_for times out, can be swallowed (Python 3.11).
        self._stopping = False

    def rescan(self) -> None:
        """Look at the sources now: a webhook was created or deleted in this process."""
        self._rescan.set()

    async def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name="webhook sources")

    async def stop(self) -> None:
        self._stopping = True
        self._rescan.set()
        tasks = [t for t in (self._supervisor, *self._followers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._followers.clear()
        metrics.STREAMS_FOLLOWED.set(0)
        # Hand the sources over at once rather than after the lease lapses.
        with contextlib.suppress(*_STORE_ERRORS):
            await sources.release(self.pool, self.owner)

    async def _supervise(self) -> None:
        while not self._stopping:
            self._rescan.clear()
            try:
                held = await sources.hold(self.pool, self.owner, self.settings.source_lease_seconds)
            except _STORE_ERRORS as error:
                log.warning("cannot renew stream leases", extra={"error": str(error)})
            except Exception:  # noqa: BLE001 - a bug must not stop every stream for good
                log.exception("renewing stream leases failed; going on")
            else:
                self._reconcile(held)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rescan.wait(), self.settings.source_scan_seconds)

    def _reconcile(self, held: list[Source]) -> None:
        keys = {source.key for source in held}
        for key, task in list(self._followers.items()):
            if key not in keys or task.done():  # deleted, taken over, or its follower gave up
                task.cancel()
                del self._followers[key]
        for source in held:
            if source.key not in self._followers:
                self._followers[source.key] = asyncio.create_task(self._follow(source), name=source.label)
        metrics.STREAMS_FOLLOWED.set(len(self._followers))

    async def _follow(self, source: Source) -> None:
        cursor = source.cursor
        delay = _RECONNECT_FIRST_SECONDS
        behind_retained_log = False
        while not self._stopping:
            try:
                if behind_retained_log:
                    cursor = await self._skip_to_head(source, cursor)
                    behind_retained_log = False
                async for event in self._events(source, cursor):
                    if await sources.queue_event(self.pool, self.owner, source, event):
                        metrics.EVENTS_QUEUED.inc()
                        self.on_queued()
                    cursor = event.cursor  # only once it is stored
                    delay = _RECONNECT_FIRST_SECONDS
            except SourceLost:
                log.info("stopped following", extra=source.log_fields)
                return
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.OUT_OF_RANGE:
                    behind_retained_log = True
                    continue
                log.warning(
                    "event stream broke; reopening", extra={**source.log_fields, "code": error.code().name, "error": error.details()}
                )
            except (*_STORE_ERRORS, ServiceError) as error:
                log.warning("cannot queue events; retrying", extra={**source.log_fields, "error": str(error)})
            except Exception:  # noqa: BLE001 - logged, then retried like any other failure
                log.exception("following a stream failed; retrying", extra=source.log_fields)
            # Also after a stream the server ended cleanly: never a tight reconnect loop.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, _RECONNECT_MAX_SECONDS)

    async def _skip_to_head(self, source: Source, cursor: str) -> str:
        """The stored cursor is older than MessageService still keeps: those events are gone for
        every reader. Say so loudly and go on from the stream's present."""
        head = await self._head(source)
        await sources.move_cursor(self.pool, self.owner, source, head)
        metrics.EVENTS_SKIPPED.inc()
        log.error("events older than the retained log were skipped", extra={**source.log_fields, "cursor": cursor})
        return head

    def _events(self, source: Source, cursor: str) -> AsyncIterator[messaging_pb.ConversationEvent]:
        if isinstance(source, UserSource):
            return self.messaging.user_events(source.user_id, cursor, source.client)
        assert isinstance(source, ConversationSource)
        return self.messaging.events(source.conversation_id, cursor)

    async def _head(self, source: Source) -> str:
        if isinstance(source, UserSource):
            return await self.messaging.user_start_cursor(source.user_id, source.client)
        assert isinstance(source, ConversationSource)
        return await self.messaging.head_cursor(source.conversation_id)
