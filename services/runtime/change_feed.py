"""Hot lookups of another service's data, cached in-process and emptied when the
owning service announces a change.

The owner publishes the id of what changed on a Redis channel right after its
transaction commits; every cache holding that id drops it, so the next lookup
reads the source of truth again (membership removed -> no delivery from the next
message on). If the subscription breaks, every entry is dropped, since changes
may have been missed; entries also expire after `max_age` as a last safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import redis.asyncio as redis

log = logging.getLogger("chat4all.change_feed")
V = TypeVar("V")

CONVERSATIONS = "chat4all:changed:conversation"
USERS = "chat4all:changed:user"


Announce = Callable[[str], Awaitable[None]]


async def announce(client: redis.Redis, channel: str, key: str) -> None:
    await client.publish(channel, key)


async def nobody(key: str) -> None:
    """The announcer of a service that runs without listeners (unit tests)."""


class ChangeFedCache(Generic[V]):
    def __init__(
        self,
        client: redis.Redis,
        channel: str,
        load: Callable[[str], Awaitable[V]],
        max_age: float = 60.0,
        max_entries: int = 50_000,
    ) -> None:
        self.client, self.channel, self.load = client, channel, load
        self.max_age, self.max_entries = max_age, max_entries
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._changes = 0  # announcements seen; a load that overlapped one is not kept
        self._listening = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name=f"cache {self.channel}")
        await asyncio.wait_for(self._listening.wait(), 10)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def get(self, key: str) -> V:
        entry = self._entries.get(key)
        if entry is not None and self._listening.is_set() and time.monotonic() - entry[0] < self.max_age:
            self._entries.move_to_end(key)
            return entry[1]
        changes = self._changes
        value = await self.load(key)
        # Keep it only if no change was announced while it loaded, and only while listening.
        if self._listening.is_set() and self._changes == changes:
            self._entries[key] = (time.monotonic(), value)
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def forget(self, key: str) -> None:
        self._changes += 1
        self._entries.pop(key, None)

    async def _listen(self) -> None:
        while True:
            try:
                async with self.client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._listening.set()
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            data = message["data"]
                            self.forget(data.decode() if isinstance(data, bytes) else data)
            except (redis.ConnectionError, OSError) as error:
                log.warning("change feed lost; dropping the cache", extra={"channel": self.channel, "error": str(error)})
            finally:
                self._listening.clear()
                self._entries.clear()
            await asyncio.sleep(1)
