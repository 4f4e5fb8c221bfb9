"""Wakes event-stream subscribers when their conversation's log grows.

One LISTEN connection per process fans PostgreSQL notifications out to local
subscribers; a subscriber then reads the log after its cursor, so a missed or
coalesced notification costs latency, never an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator

from psycopg import AsyncConnection, OperationalError

from services.messaging.store import EVENTS_CHANNEL

log = logging.getLogger("chat4all.messaging.feed")


class EventFeed:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="event-feed")
        await asyncio.wait_for(self.connected.wait(), 30)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.contextmanager
    def subscription(self, conversation_id: str) -> Iterator[asyncio.Event]:
        wake = asyncio.Event()
        self._waiters[conversation_id].add(wake)
        try:
            yield wake
        finally:
            waiters = self._waiters[conversation_id]
            waiters.discard(wake)
            if not waiters:
                del self._waiters[conversation_id]

    async def _listen(self) -> None:
        while True:
            try:
                async with await AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.connected.set()
                    self._wake_all()  # events may have landed while we were reconnecting
                    async for notify in conn.notifies():
                        for wake in self._waiters.get(notify.payload, ()):
                            wake.set()
            except OperationalError as error:
                self.connected.clear()
                log.warning("event feed lost its connection; reconnecting", extra={"error": str(error)})
                await asyncio.sleep(1)

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for wake in waiters:
                wake.set()
