"""Settings every connector shares; env var = C4A_ + the field name in upper case.

A connector's own settings class extends this one with its platform's
credentials, URLs and limits.
"""

from __future__ import annotations

import dataclasses

from services.runtime.config import ConfigError, RuntimeSettings


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConnectorSettings(RuntimeSettings):
    # Every Redis key of this connector starts with this (send records, limits, inbound ids).
    connector_redis_prefix: str = "c4a:connector"
    # Redis connections per process; a command waits this long for a free one, then fails
    # (the send answers UNAVAILABLE).
    connector_redis_max_connections: int = 100
    connector_redis_wait_seconds: float = 5.0
    # How long a send's result is kept to answer repeats (router retries, replays) without
    # sending twice, and to match the platform's status reports to the message.
    connector_sent_ttl_seconds: int = 7 * 24 * 3600
    # How long one replica may hold a send before a concurrent duplicate may try it again.
    # Longer than the HTTP timeout, so a slow send is never duplicated.
    connector_send_lock_seconds: float = 30.0
    # How long a handled inbound id (update, webhook message, status) is remembered to drop
    # the platform's redeliveries of it. Meta redelivers for up to 7 days.
    connector_inbound_ttl_seconds: int = 8 * 24 * 3600

    # The platform's HTTP API.
    connector_http_timeout_seconds: float = 10.0
    connector_http_connect_timeout_seconds: float = 3.0
    connector_http_max_connections: int = 100
    connector_health_timeout_seconds: float = 2.0

    # Where the connector's own webhook HTTP server listens (platforms POST to it).
    connector_webhook_host: str = "127.0.0.1"
    connector_webhook_port: int = 0
    # Largest webhook body accepted; platform events are small, media come by reference.
    connector_webhook_max_bytes: int = 1024 * 1024

    # Circuit breaker per account: this many consecutive platform failures (unreachable,
    # timeouts, 5xx) open it. Keep it at most the router's max attempts, so an outage seen by
    # a single message opens the breaker before that message runs out of attempts.
    connector_breaker_failure_threshold: int = 3
    # Open this long before one probe is let through; doubles while probes fail, up to the max.
    connector_breaker_open_seconds: float = 2.0
    connector_breaker_max_open_seconds: float = 30.0

    # The file service, where inbound media are imported before their message is published.
    files_target: str = "127.0.0.1:18204"
    # How long the media of one inbound message may take to import (all at once); past it the
    # message is published with the platform's references instead. Below the 30 s an inbound
    # event stays claimed (inbound.py), so a redelivery meanwhile waits rather than importing too
    # (and one that did would get the same file).
    connector_media_import_seconds: float = 20.0
    # Where downloads are spooled on their way to the file service (up to 2 GiB each, never
    # in memory); empty: the system's temporary directory.
    connector_media_spool_dir: str = ""
    # The client that owns this deployment's platform accounts (as the router's setting of the
    # same name): imported media are its files. Empty: unowned, reachable by internal calls only.
    inbound_owner_client_id: str = ""

    def validate(self) -> None:
        """Fail at start-up, naming the variable, instead of on the first message."""
        if self.connector_breaker_failure_threshold < 1:
            raise ConfigError("C4A_CONNECTOR_BREAKER_FAILURE_THRESHOLD must be at least 1")
        if not 0 < self.connector_breaker_open_seconds <= self.connector_breaker_max_open_seconds:
            raise ConfigError("C4A_CONNECTOR_BREAKER_OPEN_SECONDS must be positive and at most ..._MAX_OPEN_SECONDS")
        if self.connector_send_lock_seconds <= self.connector_http_timeout_seconds:
            raise ConfigError("C4A_CONNECTOR_SEND_LOCK_SECONDS must be longer than C4A_CONNECTOR_HTTP_TIMEOUT_SECONDS")
        if not 0 < self.connector_media_import_seconds < 30:
            raise ConfigError("C4A_CONNECTOR_MEDIA_IMPORT_SECONDS must be positive and below 30 (an inbound event's claim)")
