"""Every setting of the WhatsApp Cloud API connector; env var = C4A_ + the field name in upper case."""

from __future__ import annotations

import dataclasses
import re

from connectors.sdk.settings import ConnectorSettings
from services.runtime.config import ConfigError

MEDIA_DELIVERIES = ("link", "upload")
_VERSION = re.compile(r"v[0-9]+\.[0-9]+")


@dataclasses.dataclass(frozen=True, kw_only=True)
class WhatsAppSettings(ConnectorSettings):
    grpc_port: int = 18403
    connector_redis_prefix: str = "c4a:whatsapp"
    connector_webhook_port: int = 18413

    # The Graph API; tests and the local platform point it at the emulator.
    whatsapp_api_url: str = "https://graph.facebook.com"
    whatsapp_api_version: str = "v21.0"
    # The business phone number this connector sends from (the account it serves).
    whatsapp_phone_number_id: str = ""
    # A system-user access token with whatsapp_business_messaging. Never logged.
    whatsapp_access_token: str = dataclasses.field(default="", repr=False)
    # The Meta app's secret: webhook bodies are signed with it (X-Hub-Signature-256).
    whatsapp_app_secret: str = dataclasses.field(default="", repr=False)
    # What we told Meta to send in the webhook verification handshake (hub.verify_token).
    whatsapp_verify_token: str = dataclasses.field(default="", repr=False)
    whatsapp_webhook_path: str = "/whatsapp/webhook"

    # Throughput of the business number (80/s by default; Meta raises it up to 1,000/s), shared
    # by every replica; the burst lets a quiet number send a few at once.
    whatsapp_messages_per_second: float = 80.0
    whatsapp_burst: int = 10
    # The pair rate limit: about one message every 6 s to the same user, bursts up to 45.
    whatsapp_recipient_per_second: float = 1 / 6
    whatsapp_recipient_burst: int = 45
    # The customer-service window: free-form messages only this long after the user's last
    # message; outside it only templates.
    whatsapp_reply_window_seconds: int = 24 * 3600
    # How files reach WhatsApp: "link" (WhatsApp fetches the short-lived download URL itself:
    # nothing passes through the connector) or "upload" (the connector uploads each file once
    # and sends its media id: for storage WhatsApp cannot reach, or one file to many users).
    whatsapp_media_delivery: str = "link"
    # Upload mode: how long a media id is reused (WhatsApp keeps uploads for 30 days), how long
    # a send waits for its upload before answering "retry shortly" (keep it under the router's
    # connector timeout), and the longest an upload may take.
    whatsapp_media_id_ttl_seconds: int = 25 * 24 * 3600
    whatsapp_media_upload_wait_seconds: float = 5.0
    whatsapp_media_upload_timeout_seconds: float = 300.0

    def validate(self) -> None:
        super().validate()
        for name in ("phone_number_id", "access_token", "app_secret", "verify_token"):
            if not getattr(self, f"whatsapp_{name}"):
                raise ConfigError(f"C4A_WHATSAPP_{name.upper()} is required")
        if not self.whatsapp_phone_number_id.isdigit():
            raise ConfigError("C4A_WHATSAPP_PHONE_NUMBER_ID must be the number's numeric id")
        if not _VERSION.fullmatch(self.whatsapp_api_version):
            raise ConfigError("C4A_WHATSAPP_API_VERSION must look like v21.0")
        if self.whatsapp_messages_per_second <= 0 or self.whatsapp_recipient_per_second <= 0:
            raise ConfigError("C4A_WHATSAPP_*_PER_SECOND must be positive")
        if self.whatsapp_burst < 1 or self.whatsapp_recipient_burst < 1:
            raise ConfigError("C4A_WHATSAPP_*_BURST must be at least 1")
        if self.whatsapp_media_delivery not in MEDIA_DELIVERIES:
            raise ConfigError(f"C4A_WHATSAPP_MEDIA_DELIVERY must be one of {', '.join(MEDIA_DELIVERIES)}")
        if not 0 < self.whatsapp_media_upload_wait_seconds <= self.whatsapp_media_upload_timeout_seconds:
            raise ConfigError("C4A_WHATSAPP_MEDIA_UPLOAD_WAIT_SECONDS must be positive and at most ..._TIMEOUT_SECONDS")
        if not self.whatsapp_webhook_path.startswith("/"):
            raise ConfigError("C4A_WHATSAPP_WEBHOOK_PATH must start with /")
