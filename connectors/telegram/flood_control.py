"""Telegram's send limits, enforced before Telegram is called and shared by every replica.

One GCRA (generic cell rate algorithm) per limit, kept in Redis as a
theoretical arrival time: a send is allowed when every limit it falls under
(the bot's, and its private chat's or its group's) has room, and then counts
against all of them; otherwise nothing is counted and the caller learns the
exact wait until the fullest limit has room again. One Lua script does the
check-and-count atomically, so replicas never overshoot together.
"""

from __future__ import annotations

import dataclasses

import redis.asyncio as redis

from connectors.telegram.settings import TelegramSettings

# KEYS: one per limit. ARGV: per key, the emission interval and the burst tolerance, in
# microseconds (milliseconds would round 1/30 s and make rates above 1,000/s infinite).
# Returns {0, 0} when the send may go (and it was counted), else {index of the fullest
# limit, microseconds until it has room}.
_GCRA = """
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


@dataclasses.dataclass(frozen=True)
class Limit:
    scope: str  # bot | private_chat | group
    interval_us: int  # one message per interval on average
    burst: int  # this many at once after a quiet period

    @property
    def tolerance_us(self) -> int:
        return self.interval_us * self.burst


@dataclasses.dataclass(frozen=True)
class Refusal:
    scope: str
    retry_after_seconds: float


def is_group_chat(chat_id: int | str) -> bool:
    """Groups and supergroups have negative ids; @username targets are channels or supergroups."""
    return isinstance(chat_id, str) or chat_id < 0


class FloodControl:
    def __init__(self, client: redis.Redis, settings: TelegramSettings) -> None:
        self._redis = client
        self._script = client.register_script(_GCRA)
        self._prefix = f"{settings.telegram_redis_prefix}:{{{settings.bot_id}}}:rate"
        self.bot = Limit("bot", _interval_us(settings.telegram_bot_per_second), settings.telegram_bot_burst)
        self.private_chat = Limit(
            "private_chat", _interval_us(settings.telegram_private_chat_per_second), settings.telegram_private_chat_burst
        )
        self.group = Limit("group", _interval_us(settings.telegram_group_per_minute / 60), settings.telegram_group_burst)

    async def admit(self, chat_id: int | str) -> Refusal | None:
        """Count one send to `chat_id`, or say which limit is full and for how long."""
        chat_limit = self.group if is_group_chat(chat_id) else self.private_chat
        limits = (self.bot, chat_limit)
        # The bot id is the key's hash tag, so both keys live in one cluster slot.
        keys = [f"{self._prefix}:bot", f"{self._prefix}:chat:{chat_id}"]
        args = [value for limit in limits for value in (limit.interval_us, limit.tolerance_us)]
        worst, wait_us = await self._script(keys=keys, args=args)
        if int(worst) == 0:
            return None
        return Refusal(limits[int(worst) - 1].scope, int(wait_us) / 1_000_000)


def _interval_us(per_second: float) -> int:
    return max(1, round(1_000_000 / per_second))
