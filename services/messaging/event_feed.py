"""Wakes event-stream subscribers when a conversation's log grows.

One LISTEN connection per process fans PostgreSQL notifications out to local
listeners; a listener then reads the log after its cursor, so a missed or
coalesced notification costs latency, never an event.

Listeners are plain callbacks taking the conversation id, called on the event
loop for every notification: a conversation stream sets its wake-up event, a
user stream notes which of its many conversations grew, and the membership
watch hears of every conversation (a first event in a conversation a user does
not follow yet tells it to look at that conversation's members).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator

from psycopg import AsyncConnection, OperationalError

from services.messaging.store import EVENTS_CHANNEL

log = logging.getLogger("chat4all.messaging.feed")

Listener = Callable[[str], None]


class EventFeed:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self._everything: set[Listener] = set()
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
        """An event set whenever the conversation's log may have grown."""
        wake = asyncio.Event()

        def listener(_: str) -> None:
            wake.set()

        self.listen(conversation_id, listener)
        try:
            yield wake
        finally:
            self.unlisten(conversation_id, listener)

    def listen(self, conversation_id: str, listener: Listener) -> None:
        self._listeners[conversation_id].add(listener)

    def unlisten(self, conversation_id: str, listener: Listener) -> None:
        listeners = self._listeners.get(conversation_id)
        if listeners is None:
            return
        listeners.discard(listener)
        if not listeners:
            del self._listeners[conversation_id]

    @contextlib.contextmanager
    def listening_to_all(self, listener: Listener) -> Iterator[None]:
        self._everything.add(listener)
        try:
            yield
        finally:
            self._everything.discard(listener)

    async def _listen(self) -> None:
        while True:
            try:
                async with await AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.connected.set()
                    self._wake_all()  # events may have landed while we were reconnecting
                    async for notify in conn.notifies():
                        self._notify(notify.payload)
            except OperationalError as error:
                self.connected.clear()
                log.warning("event feed lost its connection; reconnecting", extra={"error": str(error)})
                await asyncio.sleep(1)

    def _notify(self, conversation_id: str) -> None:
        # Copies: a listener may (un)subscribe while we iterate.
        for listener in [*self._listeners.get(conversation_id, ()), *self._everything]:
            try:
                listener(conversation_id)
            except Exception:  # one broken listener must not stop the feed for every stream
                log.exception("event feed listener failed")

    def _wake_all(self) -> None:
        for conversation_id, listeners in list(self._listeners.items()):
            for listener in list(listeners):
                listener(conversation_id)
