"""What a connector account has sent, by (recipient, message_id): its idempotency record.

A send first claims its key with a short lock, so two replicas handed the same
message at once do not both send it; the winner stores the platform's answer
for a few days, and every repeat is answered from it. The same step indexes
the platform's message ids to the delivery they belong to, which is how a
platform's later status report (delivered, read, failed) finds its message.
Each step is one Lua script (one round trip, atomic).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets

import redis.asyncio as redis
from chat4all.messaging.v1 import message_pb2 as messaging_pb2

# KEYS: sent, lock. ARGV: lock token, lock ms. -> {"sent", record} | {"claimed"} | {"busy"}
_FIND_OR_CLAIM = """
local sent = redis.call('GET', KEYS[1])
if sent then return {'sent', sent} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'claimed'} end
return {'busy'}
"""
# KEYS: sent, lock, then one delivery key per platform message id.
# ARGV: record, ttl s, lock token, delivery reference.
_RECORD = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
for i = 3, #KEYS do redis.call('SET', KEYS[i], ARGV[4], 'EX', ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""
# KEYS: parts, lock. ARGV: parts so far, ttl s, lock token, lock ms. Only while holding the
# lock, which it renews: each part of a long send (a large upload) gets the lock's full time.
_NOTE_PARTS = """
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
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
    send_time: int  # unix seconds, as the platform stated it (or when it answered)

    def dumps(self) -> str:
        return json.dumps({"ids": self.platform_message_ids, "date": self.send_time})

    @classmethod
    def loads(cls, raw: bytes | str) -> SentRecord:
        value = json.loads(raw)
        return cls(list(value["ids"]), int(value["date"]))


@dataclasses.dataclass(frozen=True)
class DeliveryRef:
    """The delivery a platform message id belongs to."""

    message_id: str
    conversation_id: str
    recipient: messaging_pb2.Recipient

    def dumps(self) -> str:
        recipient = base64.b64encode(self.recipient.SerializeToString()).decode()
        return json.dumps({"m": self.message_id, "c": self.conversation_id, "r": recipient})

    @classmethod
    def loads(cls, raw: bytes | str) -> DeliveryRef:
        value = json.loads(raw)
        return cls(value["m"], value["c"], messaging_pb2.Recipient.FromString(base64.b64decode(value["r"])))


@dataclasses.dataclass(frozen=True)
class Claim:
    """Either the earlier send's record, or the lock to send now, or neither (busy elsewhere)."""

    sent: SentRecord | None = None
    lock: str | None = None


class SendLedger:
    def __init__(self, client: redis.Redis, prefix: str, *, ttl_seconds: int, lock_seconds: float) -> None:
        """`prefix` should carry the account as hash tag: a send's keys then share a cluster slot."""
        self._redis = client
        self._find_or_claim = client.register_script(_FIND_OR_CLAIM)
        self._record = client.register_script(_RECORD)
        self._release = client.register_script(_RELEASE)
        self._note_parts = client.register_script(_NOTE_PARTS)
        self._prefix = prefix
        self._ttl_seconds = ttl_seconds
        self._lock_ms = int(lock_seconds * 1000)

    def _keys(self, target: str, message_id: str) -> list[str]:
        return [f"{self._prefix}:sent:{target}:{message_id}", f"{self._prefix}:sending:{target}:{message_id}"]

    def _delivery_key(self, platform_message_id: str) -> str:
        return f"{self._prefix}:delivery:{platform_message_id}"

    async def find_or_claim(self, target: str, message_id: str) -> Claim:
        token = secrets.token_hex(8)
        answer = await self._find_or_claim(keys=self._keys(target, message_id), args=[token, self._lock_ms])
        state = answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
        if state == "sent":
            return Claim(sent=SentRecord.loads(answer[1]))
        if state == "claimed":
            return Claim(lock=token)
        return Claim()

    async def record(self, target: str, message_id: str, lock: str, sent: SentRecord, delivery: DeliveryRef) -> None:
        keys = self._keys(target, message_id) + [self._delivery_key(pmid) for pmid in sent.platform_message_ids]
        await self._record(keys=keys, args=[sent.dumps(), self._ttl_seconds, lock, delivery.dumps()])

    async def parts_sent(self, target: str, message_id: str) -> SentRecord | None:
        """The parts of a multi-part send that went out before it failed, if any."""
        raw = await self._redis.get(f"{self._prefix}:parts:{target}:{message_id}")
        return SentRecord.loads(raw) if raw is not None else None

    async def note_parts(self, target: str, message_id: str, lock: str, sent: SentRecord) -> None:
        """Keeps the parts sent so far and renews the lock; nothing unless `lock` is still ours."""
        keys = [f"{self._prefix}:parts:{target}:{message_id}", self._keys(target, message_id)[1]]
        await self._note_parts(keys=keys, args=[sent.dumps(), self._ttl_seconds, lock, self._lock_ms])

    async def release(self, target: str, message_id: str, lock: str) -> None:
        await self._release(keys=self._keys(target, message_id)[1:], args=[lock])

    async def delivery_of(self, platform_message_id: str) -> DeliveryRef | None:
        raw = await self._redis.get(self._delivery_key(platform_message_id))
        return DeliveryRef.loads(raw) if raw is not None else None
