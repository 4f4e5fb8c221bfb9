"""Async Redis client (redis.asyncio) with a bounded connection pool."""

from __future__ import annotations

import redis.asyncio as redis


async def open_redis(
    url: str, client_name: str = "chat4all", max_connections: int = 50, wait_seconds: float = 10.0
) -> redis.Redis:
    # A blocking pool: under a burst, callers wait for a free connection instead of failing.
    # The name shows in CLIENT LIST, so an operator sees which service holds which connections.
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=wait_seconds, client_name=client_name, health_check_interval=30
    )
    client = redis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections
    await client.ping()  # fail at start-up, not on the first request
    return client
