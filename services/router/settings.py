from __future__ import annotations

import dataclasses

from services.runtime.config import RuntimeSettings


@dataclasses.dataclass(frozen=True, kw_only=True)
class RouterSettings(RuntimeSettings):
    conversations_target: str = "127.0.0.1:18202"
    users_target: str = "127.0.0.1:18203"
    # FileService: attachments' state and fresh download URLs for connectors.
    files_target: str = "127.0.0.1:18204"
    # The connectors, one `channel=host:port/account_id` each, comma separated, e.g.
    # "telegram=127.0.0.1:18401/123456" (account_id: the bot, phone number or page sending).
    connectors: tuple[str, ...] = ()
    consumer_group: str = "chat4all-router"
    inbound_consumer_group: str = "chat4all-router-inbound"
    # At most this many dispatch attempts per delivery (a retry-after deferral is not an attempt).
    max_attempts: int = 3
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    # How long a delivery may keep being deferred by retry-after answers (throttling, an open
    # circuit) before it is dead-lettered.
    max_deferral_seconds: float = 600.0
    connector_timeout_seconds: float = 10.0
    # A send with files: the connector may stream them to the platform (Telegram uploads up to
    # 50 MB each), so it gets longer before the router counts the attempt as failed.
    connector_media_timeout_seconds: float = 180.0
    max_in_flight: int = 5000
    commit_interval_seconds: float = 0.2
    # The client that owns this deployment's platform accounts (C4A_INBOUND_OWNER_CLIENT_ID):
    # the users and conversations inbound messages create are its own, and a sender is resolved
    # among its users (services/runtime/tenancy.py). Empty: they are unowned, seen by internal
    # callers only, never by a client through the front door; a deployment with clients sets it.
    inbound_owner_client_id: str = ""
