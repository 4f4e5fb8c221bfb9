"""Prometheus metrics of the front door's checks (the RPCs have the runtime's RED metrics).
No label names a key or a client: they would leak ids and grow without bound."""

from __future__ import annotations

from prometheus_client import Counter

DECISIONS = Counter(
    "chat4all_auth_decisions_total",
    "Front-door checks by outcome: allowed, unauthenticated (401), forbidden (403), throttled (429), "
    "unavailable (503: the key store could not be reached).",
    ["outcome"],
)
RATE_LIMITER_FAILURES = Counter(
    "chat4all_auth_rate_limiter_failures_total",
    "Checks let through unthrottled because Redis did not answer the rate limiter in time.",
)
