"""WebhookService settings: the runtime's, plus where MessageService answers and how
deliveries are paced. Each field is read from C4A_<FIELD> (e.g. C4A_DELIVERY_MAX_ATTEMPTS)."""

from __future__ import annotations

import dataclasses

from services.runtime.config import ConfigError, RuntimeSettings


@dataclasses.dataclass(frozen=True, kw_only=True)
class WebhookSettings(RuntimeSettings):
    # MessageService: conversation and user streams, where they stand (C4A_MESSAGING_TARGET). The
    # default is the messaging app of the local platform (scripts/platform/local.toml).
    messaging_target: str = "127.0.0.1:18201"
    # One POST may take this long, connection included, before it counts as failed.
    delivery_timeout_seconds: float = 10.0
    # Attempts per event before it is dead-lettered; the defaults retry for about 20 minutes.
    delivery_max_attempts: int = 8
    # The wait after failed attempt n is about base * 2^(n-1), capped, half of it random.
    delivery_backoff_base_seconds: float = 10.0
    delivery_backoff_max_seconds: float = 3600.0
    # POSTs in flight at once in this process (one per conversation lane at most).
    delivery_concurrency: int = 64
    # How often to look for work queued by other replicas; our own wakes the dispatcher at once.
    delivery_poll_seconds: float = 1.0
    # How often to look for streams nobody follows (webhooks created on other replicas, or
    # whose follower died), and how long a replica's claim on a stream lasts unrenewed.
    source_scan_seconds: float = 5.0
    source_lease_seconds: float = 30.0
    # Off in production: a URL must not reach loopback, private or link-local addresses (the
    # cloud metadata service, our own services). The local platform turns it on.
    deliver_to_private_networks: bool = False

    def __post_init__(self) -> None:
        if self.delivery_max_attempts < 1:
            raise ConfigError("C4A_DELIVERY_MAX_ATTEMPTS must be at least 1")
        if not 0 < self.delivery_backoff_base_seconds <= self.delivery_backoff_max_seconds:
            raise ConfigError("need 0 < C4A_DELIVERY_BACKOFF_BASE_SECONDS <= C4A_DELIVERY_BACKOFF_MAX_SECONDS")
        if self.delivery_timeout_seconds <= 0 or self.delivery_concurrency < 1:
            raise ConfigError("C4A_DELIVERY_TIMEOUT_SECONDS and C4A_DELIVERY_CONCURRENCY must be positive")
        if self.source_lease_seconds <= 2 * self.source_scan_seconds:
            raise ConfigError("C4A_SOURCE_LEASE_SECONDS must exceed twice C4A_SOURCE_SCAN_SECONDS (leases are renewed per scan)")

    @property
    def delivery_lease_seconds(self) -> float:
        """How long an attempt holds its delivery: longer than any POST, so two replicas never
        send one event at once unless the holder died."""
        return self.delivery_timeout_seconds + 10.0
