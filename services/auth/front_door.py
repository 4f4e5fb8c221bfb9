"""The front door's decision about one client request: who is calling (their API key), may
they call this RPC (the scope its `required_scope` option names), and may they call now (their
client's rate limit, shared by all of the client's keys and every replica).

Failure modes, chosen on purpose: when the key store cannot be reached the request is refused
(503, retry): an unverified key is never let in. When Redis does not answer the rate limiter
in time the request goes through unthrottled and the failure is logged and counted:
availability matters more than a strict limit for a while.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as redis

from services.auth import credentials, metrics, scopes
from services.auth.store import StoredKey
from services.runtime.errors import Unavailable
from services.runtime.rate_limits import Bucket, Limit, RateLimiter

log = logging.getLogger("chat4all.auth")

KeyLookup = Callable[[str], Awaitable[StoredKey | None]]


class Outcome(enum.Enum):
    ALLOWED = "allowed"
    UNAUTHENTICATED = "unauthenticated"  # 401: no key, or not a valid one
    FORBIDDEN = "forbidden"  # 403: a valid key without the scope, or an internal RPC
    THROTTLED = "throttled"  # 429: the client is over its rate limit
    UNAVAILABLE = "unavailable"  # 503: the key could not be checked


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    message: str = ""
    key: StoredKey | None = None  # set when the key was valid
    retry_after_seconds: int = 0  # THROTTLED: whole seconds, at least 1


# One answer for every invalid key (malformed, unknown, revoked, wrong secret): which one it was
# is for our logs, not for whoever holds the key.
_INVALID_KEY = "the API key is not valid"


class FrontDoor:
    def __init__(
        self,
        keys: KeyLookup,
        limiter: RateLimiter,
        required: dict[str, int],
        default_requests_per_second: int,
        limiter_timeout_seconds: float = 0.1,
    ) -> None:
        self.keys, self.limiter, self.required = keys, limiter, required
        self.default_requests_per_second = default_requests_per_second
        self.limiter_timeout_seconds = limiter_timeout_seconds
        self._limiter_warned = 0.0

    async def decide(self, path: str, presented: str | None) -> Decision:
        decision = await self._decide(path.split("?", 1)[0], presented)
        metrics.DECISIONS.labels(decision.outcome.value).inc()
        return decision

    async def _decide(self, method: str, presented: str | None) -> Decision:
        if presented is None:
            return Decision(Outcome.UNAUTHENTICATED, "this call needs an API key: send Authorization: Bearer <key>")
        key_id = credentials.key_id_of(presented)
        if key_id is None:
            return Decision(Outcome.UNAUTHENTICATED, _INVALID_KEY)
        try:
            key = await self.keys(key_id)
        except Unavailable:
            log.warning("key store unreachable; refusing requests until it answers")
            return Decision(Outcome.UNAVAILABLE, "the API key cannot be checked right now; retry")
        # The key id is public (it is part of every secret), so answering an unknown id faster
        # than a wrong secret gives nothing away; the secret itself is compared in constant time.
        if key is None or key.revoked or not credentials.matches(presented, key.secret_hash):
            log.debug("invalid API key", extra={"key_id": key_id, "known": key is not None})
            return Decision(Outcome.UNAUTHENTICATED, _INVALID_KEY)
        forbidden = self._forbidden(method, key)
        if forbidden:
            log.info("forbidden", extra={"key_id": key.key_id, "client_id": key.client_id, "method": method[:200]})
            return Decision(Outcome.FORBIDDEN, forbidden, key)
        wait = await self._throttle(key)
        if wait:
            log.debug("throttled", extra={"client_id": key.client_id, "retry_after_seconds": wait})
            return Decision(Outcome.THROTTLED, "too many requests: retry later", key, retry_after_seconds=wait)
        return Decision(Outcome.ALLOWED, key=key)

    def _forbidden(self, method: str, key: StoredKey) -> str:
        """Why the key may not call `method`, or "" when it may."""
        if method.startswith(scopes.KEY_ONLY_PREFIXES):
            return ""
        needed = self.required.get(method)
        if needed is None:
            return "this method is not available to clients"
        if needed not in key.scopes:
            return f"this call needs an API key with the {scopes.NAMES[needed]} scope"
        return ""

    async def _throttle(self, key: StoredKey) -> int:
        """0 when the client may call now, else the whole seconds to wait (at least 1)."""
        rate = key.requests_per_second or self.default_requests_per_second
        bucket = Bucket(key.client_id, Limit("client", per_second=rate, burst=2 * rate))
        try:
            async with asyncio.timeout(self.limiter_timeout_seconds):
                refusal = await self.limiter.admit([bucket])
        except (redis.RedisError, OSError, TimeoutError) as error:
            metrics.RATE_LIMITER_FAILURES.inc()
            # Once in a while, not per request: a Redis outage must not flood the log.
            if time.monotonic() - self._limiter_warned > 10:
                self._limiter_warned = time.monotonic()
                log.warning("rate limiter unavailable; letting requests through", extra={"error": repr(error)})
            return 0
        if refusal is None:
            return 0
        return max(1, math.ceil(refusal.retry_after_seconds))
