"""The shared Redis cache of hot lookups, on the machine's Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as redis

from services.runtime.config import load_settings
from services.runtime.errors import NotFound, Unavailable
from services.runtime.shared_cache import SharedCache, cache_namespace


@pytest.fixture
async def client():
    connection = redis.from_url(load_settings().redis_url)
    namespace = f"c4a-test-cache-{uuid.uuid4().hex[:10]}"
    yield connection, namespace
    keys = [key async for key in connection.scan_iter(match=f"{namespace}:*")]
    if keys:
        await connection.delete(*keys)
    await connection.aclose()


class Source:
    """The database stand-in: counts reads, and can pause one to let a change commit meanwhile."""

    def __init__(self, value: bytes) -> None:
        self.value, self.reads = value, 0
        self.paused: asyncio.Event | None = None

    async def load(self) -> bytes:
        self.reads += 1
        value = self.value
        if self.paused is not None:
            await self.paused.wait()
        return value


async def test_a_copy_serves_every_replica_until_a_change_drops_it(client):
    connection, namespace = client
    replica_a, replica_b = SharedCache(connection, namespace), SharedCache(connection, namespace)
    source = Source(b"members: ana, bia")
    assert await replica_a.get("conversation:1", source.load) == b"members: ana, bia"
    assert await replica_b.get("conversation:1", source.load) == b"members: ana, bia"
    assert source.reads == 1
    source.value = b"members: ana"
    await replica_a.invalidate("conversation:1")
    assert await replica_b.get("conversation:1", source.load) == b"members: ana"
    assert source.reads == 2


async def test_a_load_that_overlapped_a_change_is_not_kept(client):
    connection, namespace = client
    cache = SharedCache(connection, namespace)
    source = Source(b"old")
    source.paused = asyncio.Event()
    slow = asyncio.create_task(cache.get("user:1", source.load))  # read the old row ...
    while source.reads == 0:
        await asyncio.sleep(0.01)
    source.value = b"new"
    await cache.invalidate("user:1")  # ... then the change committed and dropped the copy
    source.paused.set()
    assert await slow == b"old"  # that caller saw the database as it was
    source.paused = None
    assert await cache.get("user:1", source.load) == b"new"  # but the old copy was not kept


async def test_misses_are_not_cached_and_redis_trouble_reads_the_database(client):
    connection, namespace = client
    cache = SharedCache(connection, namespace)

    async def missing() -> bytes:
        raise NotFound("no such user")

    with pytest.raises(NotFound):
        await cache.get("user:2", missing)
    assert await cache.get("user:2", Source(b"created since").load) == b"created since"

    broken = SharedCache(redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2), namespace)
    source = Source(b"from the database")
    assert await broken.get("user:3", source.load) == b"from the database"
    with pytest.raises(Unavailable, match="retry with the same request_id"):
        await broken.invalidate("user:3")


def test_each_database_has_its_own_namespace():
    assert cache_namespace("postgresql://postgres@127.0.0.1:5432/chat4all", "users") == "c4a:cache:chat4all:users"
    assert cache_namespace("dbname=c4a_test_1 host=127.0.0.1", "users") != cache_namespace("dbname=c4a_test_2", "users")
