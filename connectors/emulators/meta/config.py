"""Settings both Meta emulators share, with defaults that run locally."""

from __future__ import annotations

import dataclasses

from .webhooks import WebhookPolicy

MiB = 1024 * 1024


@dataclasses.dataclass
class MetaConfig:
    host: str = "127.0.0.1"
    port: int = 8082
    seed: int | None = None
    # Signs webhooks (X-Hub-Signature-256); the connector verifies with the same secret.
    app_secret: str = "local-app-secret"
    # Bearer tokens the Graph API accepts; anything else is 401 / code 190.
    access_tokens: tuple[str, ...] = ("local-access-token",)
    # hub.verify_token of the handshake when a subscription does not name one.
    verify_token: str = "local-verify-token"
    # Subscribed at startup (handshake retried until the receiver answers).
    webhook_url: str | None = None
    limits_enabled: bool = True
    # In-memory history for the control API (oldest dropped first).
    record_cap: int = 100_000
    deliveries_cap: int = 20_000
    media_store_bytes: int = 512 * MiB
    # Largest multipart upload the Graph API accepts (WhatsApp documents: 100 MB).
    upload_limit_bytes: int = 100 * MiB
    webhook: WebhookPolicy = dataclasses.field(default_factory=WebhookPolicy)
