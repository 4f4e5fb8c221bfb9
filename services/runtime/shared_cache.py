"""Hot lookups of a service's own data, cached in Redis for every replica.

The database stays the source of truth: an entry is only a copy, dropped by the
owning service right after a change commits, and expiring on its own. A reader
that loaded from the database while a change was committing must not put the
old copy back: every key has a generation, bumped on each invalidation, and a
copy is stored only if the generation it started with is still current.
Redis trouble never fails a lookup (it reads the database instead); a failed
invalidation does fail the change's call, so the client's retry (same
request_id) invalidates again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as redis
from psycopg.conninfo import conninfo_to_dict
from redis.exceptions import RedisError

from services.runtime.errors import Unavailable

log = logging.getLogger("chat4all.shared_cache")

# KEYS: generation, value. ARGV: the generation read before loading, the value, ttl seconds.
_STORE_IF_CURRENT = """
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1
"""
# KEYS: generation, value. Bumps the generation (kept a day: longer than any load) and drops
# the value.
_INVALIDATE = """
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 86400)
redis.call('DEL', KEYS[2])
return 1
"""


def cache_namespace(postgres_dsn: str, owner: str) -> str:
    """Keys of one database's copies: services on other databases (tests, tenants) sharing the
    Redis never read each other's."""
    database = conninfo_to_dict(postgres_dsn).get("dbname") or "postgres"
    return f"c4a:cache:{database}:{owner}"


class SharedCache:
    def __init__(self, client: redis.Redis, namespace: str, ttl_seconds: int = 300) -> None:
        self.client = client
        self.namespace = namespace
        self.ttl_seconds = ttl_seconds
        self._store = client.register_script(_STORE_IF_CURRENT)
        self._invalidate = client.register_script(_INVALIDATE)

    async def get(self, key: str, load: Callable[[], Awaitable[bytes]]) -> bytes:
        """The cached copy of `key`, or `load()` (from the database), kept for the next lookup.
        Whatever `load` raises (NOT_FOUND...) passes through and nothing is cached."""
        generation_key, value_key = self._keys(key)
        try:
            generation, cached = await self.client.mget(generation_key, value_key)
        except RedisError as error:
            log.warning("cache unavailable, reading the database", extra={"error": type(error).__name__})
            return await load()
        if cached is not None:
            return cached
        value = await load()
        try:
            await self._store(keys=[generation_key, value_key], args=[generation or b"0", value, self.ttl_seconds])
        except RedisError:
            pass  # the next lookup loads again
        return value

    async def invalidate(self, *keys: str) -> None:
        """Drop `keys` after a committed change, so every replica reads the database again."""
        try:
            # One script per key: each key is its own cluster slot.
            await asyncio.gather(*(self._invalidate(keys=list(self._keys(key))) for key in keys))
        except RedisError as error:
            raise Unavailable(
                f"the change is saved, but cached copies could not be dropped ({type(error).__name__}); "
                "retry with the same request_id"
            ) from None

    def _keys(self, key: str) -> tuple[str, str]:
        # One hash tag per key: its generation and value share a cluster slot.
        return f"{self.namespace}:gen:{{{key}}}", f"{self.namespace}:val:{{{key}}}"
