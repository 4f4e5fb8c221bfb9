"""Every setting of the Instagram Messaging connector; env var = C4A_ + the field name in upper case."""

from __future__ import annotations

import dataclasses
import re

from connectors.sdk.settings import ConnectorSettings
from services.runtime.config import ConfigError

_VERSION = re.compile(r"v[0-9]+\.[0-9]+")


@dataclasses.dataclass(frozen=True, kw_only=True)
class InstagramSettings(ConnectorSettings):
    grpc_port: int = 18404
    connector_redis_prefix: str = "c4a:instagram"
    connector_webhook_port: int = 18414

    # The Graph API; tests and the local platform point it at the emulator.
    instagram_api_url: str = "https://graph.facebook.com"
    instagram_api_version: str = "v21.0"
    # The professional account this connector sends as (its Instagram user id).
    instagram_account_id: str = ""
    # A token with instagram_manage_messages for that account. Never logged.
    instagram_access_token: str = dataclasses.field(default="", repr=False)
    # The Meta app's secret: webhook bodies are signed with it (X-Hub-Signature-256).
    instagram_app_secret: str = dataclasses.field(default="", repr=False)
    # What we told Meta to send in the webhook verification handshake (hub.verify_token).
    instagram_verify_token: str = dataclasses.field(default="", repr=False)
    instagram_webhook_path: str = "/instagram/webhook"

    # Send API limits per account, shared by every replica: text, links, images and files,
    # and the much lower one for audio and video.
    instagram_text_per_second: float = 300.0
    instagram_text_burst: int = 30
    instagram_media_per_second: float = 10.0
    instagram_media_burst: int = 2
    # Replies only this long after the user's last message.
    instagram_reply_window_seconds: int = 24 * 3600

    def validate(self) -> None:
        super().validate()
        for name in ("account_id", "access_token", "app_secret", "verify_token"):
            if not getattr(self, f"instagram_{name}"):
                raise ConfigError(f"C4A_INSTAGRAM_{name.upper()} is required")
        if not self.instagram_account_id.isdigit():
            raise ConfigError("C4A_INSTAGRAM_ACCOUNT_ID must be the account's numeric Instagram user id")
        if not _VERSION.fullmatch(self.instagram_api_version):
            raise ConfigError("C4A_INSTAGRAM_API_VERSION must look like v21.0")
        if self.instagram_text_per_second <= 0 or self.instagram_media_per_second <= 0:
            raise ConfigError("C4A_INSTAGRAM_*_PER_SECOND must be positive")
        if self.instagram_text_burst < 1 or self.instagram_media_burst < 1:
            raise ConfigError("C4A_INSTAGRAM_*_BURST must be at least 1")
        if not self.instagram_webhook_path.startswith("/"):
            raise ConfigError("C4A_INSTAGRAM_WEBHOOK_PATH must start with /")
