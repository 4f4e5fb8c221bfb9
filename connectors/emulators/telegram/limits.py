"""The platform's flood limits as token buckets: per private chat, per group, per bot.

A send over a limit is refused with 429 and a `retry_after` that is the time
until the bucket holds a whole token again, rounded up to seconds.
"""

from __future__ import annotations

import dataclasses
import math
import time

from .config import RateLimits


class TokenBucket:
    __slots__ = ("rate", "capacity", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float):
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0 when it is)."""
        self.refill(now)
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def is_full(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= self.capacity


class FloodControl:
    """Per-bot and per-chat buckets; checked together, consumed together."""

    # Idle (full) chat buckets are pruned when there are more than this many.
    _PRUNE_AT = 100_000

    def __init__(self, limits: RateLimits):
        self.limits = limits
        self._bots: dict[str, TokenBucket] = {}
        self._chats: dict[tuple[str, int], TokenBucket] = {}
        self._next_set_webhook: dict[str, float] = {}

    def configure(self, limits: RateLimits) -> None:
        self.limits = limits
        self.reset()

    def reset(self) -> None:
        self._bots.clear()
        self._chats.clear()
        self._next_set_webhook.clear()

    def snapshot(self) -> dict:
        return dataclasses.asdict(self.limits)

    def check_send(self, token: str, chat_id: int, is_private: bool) -> int:
        """0 when the send may go (and it is counted), else the retry_after in seconds."""
        limits = self.limits
        if not limits.enabled:
            return 0
        now = time.monotonic()
        bot = self._bots.get(token)
        if bot is None:
            bot = self._bots[token] = TokenBucket(limits.bot_per_s, limits.bot_burst, now)
        chat = self._chats.get((token, chat_id))
        if chat is None:
            if len(self._chats) >= self._PRUNE_AT:
                self._prune(now)
            if is_private:
                chat = TokenBucket(limits.private_chat_per_s, limits.private_chat_burst, now)
            else:
                chat = TokenBucket(limits.group_chat_per_min / 60.0, limits.group_chat_burst, now)
            self._chats[(token, chat_id)] = chat
        wait = max(bot.wait(now), chat.wait(now))
        if wait > 0:
            return max(1, math.ceil(wait))
        bot.tokens -= 1.0
        chat.tokens -= 1.0
        return 0

    def check_set_webhook(self, token: str) -> int:
        if not self.limits.enabled or self.limits.set_webhook_interval_s <= 0:
            return 0
        now = time.monotonic()
        next_allowed = self._next_set_webhook.get(token, 0.0)
        if now < next_allowed:
            return max(1, math.ceil(next_allowed - now))
        self._next_set_webhook[token] = now + self.limits.set_webhook_interval_s
        return 0

    def _prune(self, now: float) -> None:
        for key in [key for key, bucket in self._chats.items() if bucket.is_full(now)]:
            del self._chats[key]
