"""Rate limits shared by every replica (Redis): a connector's sends before a platform is
called, a client's requests at the front door.

One GCRA (generic cell rate algorithm) per bucket, kept in Redis as a
theoretical arrival time: an event (a send, a request) is allowed when every bucket it falls
under (the account's, its recipient's...) has room, and then counts against all of
them; otherwise nothing is counted and the caller learns the exact wait until
the fullest bucket has room again. One Lua script does the check-and-count
atomically, so replicas never overshoot together. When the other side itself
throttles (a 429 with a retry time), `hold` closes a bucket for that long, so
every replica slows down, not only the one that was told.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import redis.asyncio as redis

# KEYS: one per bucket. ARGV: per key, the emission interval and the burst tolerance, in
# microseconds (milliseconds would round 1/30 s and make rates above 1,000/s infinite).
# Returns {0, 0} when the send may go (and it was counted), else {index of the fullest
# bucket, microseconds until it has room}.
_ADMIT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local new_tats = {}
local worst, wait = 0, 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local over = new_tat - now - tolerance
  if over > wait then worst, wait = i, over end
  new_tats[i] = new_tat
end
if wait > 0 then return {worst, wait} end
for i, key in ipairs(KEYS) do
  local ttl_ms = math.max(1, math.ceil((new_tats[i] - now) / 1000))
  redis.call('SET', key, string.format('%.0f', new_tats[i]), 'PX', ttl_ms)
end
return {0, 0}
"""
# KEYS: one bucket. ARGV: tolerance us, hold us, interval us. Moves the bucket's arrival time
# so that nothing is admitted for `hold` and exactly one send is at its end (admission needs
# tat + interval - t <= tolerance); never moves it back.
_HOLD = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = now + tonumber(ARGV[2]) + tonumber(ARGV[1]) - tonumber(ARGV[3])
local current = tonumber(redis.call('GET', KEYS[1]) or 0)
if current >= tat then return 0 end
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
return 1
"""


@dataclasses.dataclass(frozen=True)
class Limit:
    scope: str  # what the bucket counts: account, recipient, group, media, client...
    per_second: float  # the sustained rate
    burst: int  # this many at once after a quiet period

    @property
    def interval_us(self) -> int:
        return max(1, round(1_000_000 / self.per_second))

    @property
    def tolerance_us(self) -> int:
        return self.interval_us * self.burst


@dataclasses.dataclass(frozen=True)
class Bucket:
    key: str  # relative to the limiter's prefix, e.g. "account" or "recipient:<id>"
    limit: Limit


@dataclasses.dataclass(frozen=True)
class Refusal:
    scope: str
    retry_after_seconds: float


class RateLimiter:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        """`prefix` should carry a hash tag ({account}) so one event's buckets share a cluster slot."""
        self._admit = client.register_script(_ADMIT)
        self._hold = client.register_script(_HOLD)
        self._prefix = prefix

    async def admit(self, buckets: Sequence[Bucket]) -> Refusal | None:
        """Count one event in every bucket, or say which is full and for how long."""
        if not buckets:
            return None
        keys = [f"{self._prefix}:{bucket.key}" for bucket in buckets]
        args = [value for bucket in buckets for value in (bucket.limit.interval_us, bucket.limit.tolerance_us)]
        worst, wait_us = await self._admit(keys=keys, args=args)
        if int(worst) == 0:
            return None
        return Refusal(buckets[int(worst) - 1].limit.scope, int(wait_us) / 1_000_000)

    async def hold(self, bucket: Bucket, seconds: float) -> None:
        """Admit nothing into `bucket` for `seconds` (the other side said to wait)."""
        await self._hold(
            keys=[f"{self._prefix}:{bucket.key}"],
            args=[bucket.limit.tolerance_us, int(seconds * 1_000_000), bucket.limit.interval_us],
        )
