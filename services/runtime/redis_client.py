"""Async Redis client (redis.asyncio) with a bounded connection pool."""

from __future__ import annotations

import redis.asyncio as redis


async def open_redis(url: str, max_connections: int = 50) -> redis.Redis:
    client = redis.from_url(url, max_connections=max_connections, health_check_interval=30)
    await client.ping()  # fail at start-up, not on the first request
    return client
