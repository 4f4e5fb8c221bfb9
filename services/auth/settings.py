"""Auth service settings: the runtime's, plus how long verified keys are trusted without
asking PostgreSQL again and the default request rate. Each field is read from C4A_<FIELD>
(e.g. C4A_AUTH_CACHE_SECONDS)."""

from __future__ import annotations

import dataclasses

from services.runtime.config import ConfigError, RuntimeSettings


@dataclasses.dataclass(frozen=True, kw_only=True)
class AuthSettings(RuntimeSettings):
    # A verified key is trusted this long before PostgreSQL is asked again: the bound on how
    # late a revocation takes effect when its announcement on Redis was missed.
    auth_cache_seconds: float = 2.0
    # Requests per second of a client whose key does not set its own; the burst is twice that.
    auth_default_requests_per_second: int = 100
    # Redis keys (rate buckets) and the revocation channel live under this prefix.
    auth_redis_prefix: str = "chat4all:auth"
    # The rate limiter gives up after this long and lets the request through: Envoy waits for
    # our answer only so long (its ext_authz timeout, 200 ms by default).
    auth_rate_limit_timeout_seconds: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.auth_cache_seconds <= 60:
            raise ConfigError("C4A_AUTH_CACHE_SECONDS must be between 0 and 60")
        if self.auth_default_requests_per_second < 1:
            raise ConfigError("C4A_AUTH_DEFAULT_REQUESTS_PER_SECOND must be at least 1")
        if self.auth_rate_limit_timeout_seconds <= 0:
            raise ConfigError("C4A_AUTH_RATE_LIMIT_TIMEOUT_SECONDS must be positive")
