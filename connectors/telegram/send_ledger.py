"""What this bot has sent, by (message_id, chat): the connector's idempotency record.

A send first claims its key with a short lock, so two replicas handed the same
message at once do not both send it; the winner stores the platform's answer
for a few days, and every repeat is answered from it. Each step is one Lua
script (one round trip, atomic): look up or claim; record and unlock; unlock.
"""

from __future__ import annotations

import dataclasses
import json
import secrets

import redis.asyncio as redis

from connectors.telegram.settings import TelegramSettings

# KEYS: sent, lock. ARGV: lock token, lock ms. -> {"sent", record} | {"claimed"} | {"busy"}
_FIND_OR_CLAIM = """
local sent = redis.call('GET', KEYS[1])
if sent then return {'sent', sent} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'claimed'} end
return {'busy'}
"""
# KEYS: sent, lock. ARGV: record, ttl s, lock token.
_RECORD = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""
# KEYS: lock. ARGV: lock token. Only our own lock: it may have expired and been taken over.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclasses.dataclass(frozen=True)
class SentRecord:
    platform_message_ids: list[str]
    send_time: int  # unix seconds, Telegram's `date`

    def dumps(self) -> str:
        return json.dumps({"ids": self.platform_message_ids, "date": self.send_time})

    @classmethod
    def loads(cls, raw: bytes | str) -> SentRecord:
        value = json.loads(raw)
        return cls(list(value["ids"]), int(value["date"]))


@dataclasses.dataclass(frozen=True)
class Claim:
    """Either the earlier send's record, or the lock to send now, or neither (busy elsewhere)."""

    sent: SentRecord | None = None
    lock: str | None = None


class SendLedger:
    def __init__(self, client: redis.Redis, settings: TelegramSettings) -> None:
        self._find_or_claim = client.register_script(_FIND_OR_CLAIM)
        self._record = client.register_script(_RECORD)
        self._release = client.register_script(_RELEASE)
        # The bot id is the keys' hash tag: a send's two keys live in one cluster slot.
        self._prefix = f"{settings.telegram_redis_prefix}:{{{settings.bot_id}}}"
        self._ttl_seconds = settings.telegram_sent_ttl_seconds
        self._lock_ms = int(settings.telegram_send_lock_seconds * 1000)

    def _keys(self, chat_id: int | str, message_id: str) -> list[str]:
        return [f"{self._prefix}:sent:{chat_id}:{message_id}", f"{self._prefix}:sending:{chat_id}:{message_id}"]

    async def find_or_claim(self, chat_id: int | str, message_id: str) -> Claim:
        token = secrets.token_hex(8)
        answer = await self._find_or_claim(keys=self._keys(chat_id, message_id), args=[token, self._lock_ms])
        state = answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
        if state == "sent":
            return Claim(sent=SentRecord.loads(answer[1]))
        if state == "claimed":
            return Claim(lock=token)
        return Claim()

    async def record(self, chat_id: int | str, message_id: str, lock: str, sent: SentRecord) -> None:
        await self._record(keys=self._keys(chat_id, message_id), args=[sent.dumps(), self._ttl_seconds, lock])

    async def release(self, chat_id: int | str, message_id: str, lock: str) -> None:
        await self._release(keys=self._keys(chat_id, message_id)[1:], args=[lock])
