"""Async Redis client (redis.asyncio) with a bounded connection pool."""

from __future__ import annotations

import redis.asyncio as redis


async def open_redis(url: str, client_name: str = "chat4all", max_connections: int = 50) -> redis.Redis:
    # The name shows in CLIENT LIST, so an operator sees which service holds which connections.
    client = redis.from_url(url, client_name=client_name, max_connections=max_connections, health_check_interval=30)
    await client.ping()  # fail at start-up, not on the first request
    return client
