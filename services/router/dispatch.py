"""How the router treats a connector's answer: done, try again later, or give up.

- RESOURCE_EXHAUSTED, or any error carrying RetryInfo (throttling, an open
  circuit breaker): wait the retry-after and try again. Not an attempt: a
  throttled message slows down instead of failing; bounded by a deferral budget.
- UNAVAILABLE that no connector answered (the connector process is down or
  restarting): our outage, not the message's fault; deferred the same way.
- UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, ABORTED: a transient
  failure; retried with exponential backoff and jitter, up to max_attempts.
- MEDIA_TOO_LARGE (an ErrorInfo reason): an attachment above the platform's
  limit. The delivery FAILS, and no dead letter is parked: replaying cannot help.
- Anything else (INVALID_ARGUMENT, FAILED_PRECONDITION, NOT_FOUND, ...): the
  platform refused the message for good; no retry, dead-lettered.
"""

from __future__ import annotations

import enum
import random

import grpc

from services.runtime.status_details import MEDIA_TOO_LARGE, answered_by, error_reason, retry_after_seconds


class Outcome(enum.Enum):
    DEFER = "defer"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    FINAL = "final"


_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
}


def classify(error: grpc.aio.AioRpcError) -> tuple[Outcome, float | None]:
    retry_after = retry_after_seconds(error)
    if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED or (retry_after is not None and error.code() in _TRANSIENT):
        return Outcome.DEFER, retry_after
    if error.code() == grpc.StatusCode.UNAVAILABLE and answered_by(error) is None:
        return Outcome.DEFER, None
    if error.code() in _TRANSIENT:
        return Outcome.TRANSIENT, retry_after
    if error_reason(error) == MEDIA_TOO_LARGE:
        return Outcome.FINAL, None
    return Outcome.PERMANENT, None


def backoff_seconds(attempt: int, base: float, maximum: float, rng: random.Random = random._inst) -> float:
    """Exponential backoff with jitter: about base, 2*base, 4*base... never above maximum."""
    ceiling = min(maximum, base * 2 ** (attempt - 1))
    return rng.uniform(ceiling / 2, ceiling)
