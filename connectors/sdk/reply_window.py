"""The customer-service window: free-form messages only within a time after the
contact last wrote to us (WhatsApp and Instagram: 24 hours).

Each inbound message from a contact moves its window's start forward (never
back: webhooks arrive out of order); the key expires with the window. Shared
by every replica (Redis), so a refused send never reaches the platform.
"""

from __future__ import annotations

import time

import redis.asyncio as redis

# KEYS: the contact. ARGV: message time (s), window (s). Keeps the latest time.
_OPENED = """
local current = tonumber(redis.call('GET', KEYS[1]) or 0)
local at = tonumber(ARGV[1])
if at <= current then return 0 end
local ttl = math.floor(at + tonumber(ARGV[2]) - tonumber(redis.call('TIME')[1]))
if ttl <= 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
return 1
"""


class ReplyWindow:
    def __init__(self, client: redis.Redis, prefix: str, window_seconds: float) -> None:
        self._redis = client
        self._opened = client.register_script(_OPENED)
        self._prefix = prefix
        self.window_seconds = window_seconds

    async def opened(self, contact: str, at_seconds: float) -> None:
        """The contact wrote to us at `at_seconds` (the platform's timestamp)."""
        await self._opened(keys=[f"{self._prefix}:{contact}"], args=[int(at_seconds), int(self.window_seconds)])

    async def closes_at(self, contact: str) -> float | None:
        """When the contact's window closes, or None when it is closed."""
        raw = await self._redis.get(f"{self._prefix}:{contact}")
        if raw is None:
            return None
        closes = float(raw) + self.window_seconds
        return closes if closes > time.time() else None
