"""Every setting of the Telegram connector; env var = C4A_ + the field name in upper case.

What every connector shares (Redis, send records, HTTP client, webhook server,
circuit breaker) is in ConnectorSettings (C4A_CONNECTOR_*); here are the bot,
how its updates come in, how files reach Telegram, and Telegram's send limits.
"""

from __future__ import annotations

import dataclasses
import os
import re

from connectors.sdk.settings import ConnectorSettings
from services.runtime.config import ConfigError, env_name

INBOUND_MODES = ("webhook", "polling", "off")
MEDIA_DELIVERIES = ("upload", "url")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Settings the connector SDK took over. A deployment still setting an old name would run on
# the default without a word (a webhook on the wrong port, keys under another prefix), so
# the start-up fails and names the new variable.
RENAMED = {
    "telegram_redis_prefix": "connector_redis_prefix",
    "telegram_redis_max_connections": "connector_redis_max_connections",
    "telegram_redis_wait_seconds": "connector_redis_wait_seconds",
    "telegram_sent_ttl_seconds": "connector_sent_ttl_seconds",
    "telegram_send_lock_seconds": "connector_send_lock_seconds",
    "telegram_update_ttl_seconds": "connector_inbound_ttl_seconds",
    "telegram_http_timeout_seconds": "connector_http_timeout_seconds",
    "telegram_http_connect_timeout_seconds": "connector_http_connect_timeout_seconds",
    "telegram_http_max_connections": "connector_http_max_connections",
    "telegram_health_timeout_seconds": "connector_health_timeout_seconds",
    "telegram_webhook_host": "connector_webhook_host",
    "telegram_webhook_port": "connector_webhook_port",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TelegramSettings(ConnectorSettings):
    grpc_port: int = 18401
    connector_redis_prefix: str = "c4a:telegram"
    # Webhook mode: where our own HTTP server listens (Telegram posts updates to it).
    connector_webhook_port: int = 18411
    # How long a send's result answers repeats. Telegram reports no statuses to match to it
    # later, so the SDK's week (Meta redelivers statuses for days) is not needed.
    connector_sent_ttl_seconds: int = 3 * 24 * 3600
    # How long a handled update_id is remembered to drop redeliveries of it. Keep it under a
    # week: after a week without updates Telegram may start its ids again.
    connector_inbound_ttl_seconds: int = 3 * 24 * 3600
    # Longer than one file's send may take (telegram_media_send_timeout_seconds): the lock is
    # renewed after each message of a send, so one file's send must fit in it.
    connector_send_lock_seconds: float = 90.0

    # The bot, as BotFather gave it ("123456:ABC..."). Never logged (not even in a repr).
    telegram_bot_token: str = dataclasses.field(default="", repr=False)
    # The Bot API server; tests and the local platform point it at the emulator.
    telegram_api_url: str = "https://api.telegram.org"
    # The account this connector serves (the bot id); derived from the token when empty.
    telegram_account_id: str = ""

    # How updates come in: webhook (Telegram POSTs to us), polling (getUpdates), off.
    telegram_inbound_mode: str = "polling"
    # Webhook mode: the path Telegram posts to.
    telegram_webhook_path: str = "/telegram/webhook"
    # The public https URL Telegram reaches the path above at; when set, setWebhook is called at
    # start-up. Empty: the webhook is registered by someone else (a deployment job, a test).
    telegram_webhook_public_url: str = ""
    # Echoed by Telegram in X-Telegram-Bot-Api-Secret-Token; required in webhook mode.
    telegram_webhook_secret: str = dataclasses.field(default="", repr=False)
    # Polling mode: long-poll wait per getUpdates call, and the backoff after a failed one.
    telegram_poll_timeout_seconds: int = 25
    telegram_poll_backoff_max_seconds: float = 30.0

    # How files reach Telegram. "upload": the connector streams each file from its presigned
    # download URL into a multipart sendPhoto/sendVideo/sendAudio/sendDocument (photos up to
    # 10 MB, other files 50 MB); the default, because our S3 is private and Telegram's servers
    # could not fetch its URLs. "url": Telegram is given the download URL and fetches the file
    # itself (photos up to 5 MB, other files 20 MB; sendDocument by URL is guaranteed for GIF,
    # PDF and ZIP only); only for storage reachable from the internet.
    telegram_media_delivery: str = "upload"
    # The longest one file's send may take: by upload, reading it from storage and uploading it;
    # by URL, Telegram fetching it (the Bot API answers once it has the file). Below the send
    # lock, which must outlast it; 0: two thirds of the lock (60 s with the default 90 s).
    telegram_media_send_timeout_seconds: float = 0.0

    # Send limits, enforced across replicas in Redis before Telegram is called. Telegram allows
    # about 1 message/s per private chat (short bursts), 20/min per group, 30/s per bot.
    telegram_private_chat_per_second: float = 1.0
    telegram_private_chat_burst: int = 3
    telegram_group_per_minute: float = 20.0
    telegram_group_burst: int = 10
    telegram_bot_per_second: float = 30.0
    telegram_bot_burst: int = 30

    @property
    def media_send_timeout_seconds(self) -> float:
        return self.telegram_media_send_timeout_seconds or self.connector_send_lock_seconds * 2 / 3

    @property
    def bot_id(self) -> str:
        return self.telegram_account_id or self.telegram_bot_token.split(":", 1)[0]

    def validate(self) -> None:
        """Fail at start-up, naming the variable, instead of on the first message."""
        super().validate()
        for old, new in RENAMED.items():
            if env_name(old) in os.environ:
                raise ConfigError(f"{env_name(old)} is no longer read: set {env_name(new)} instead")
        token = self.telegram_bot_token
        if not token or ":" not in token or not token.split(":", 1)[0].isdigit():
            raise ConfigError("C4A_TELEGRAM_BOT_TOKEN is required and must look like <bot id>:<secret>")
        if not self.bot_id.isdigit():
            raise ConfigError("C4A_TELEGRAM_ACCOUNT_ID must be the bot's numeric id")
        if self.telegram_inbound_mode not in INBOUND_MODES:
            raise ConfigError(f"C4A_TELEGRAM_INBOUND_MODE must be one of {', '.join(INBOUND_MODES)}")
        if self.telegram_inbound_mode == "webhook":
            if not _SECRET_TOKEN.fullmatch(self.telegram_webhook_secret):
                raise ConfigError(
                    "C4A_TELEGRAM_WEBHOOK_SECRET is required in webhook mode: 1-256 characters of A-Za-z0-9_-"
                )
            if not self.telegram_webhook_path.startswith("/"):
                raise ConfigError("C4A_TELEGRAM_WEBHOOK_PATH must start with /")
        if self.telegram_media_delivery not in MEDIA_DELIVERIES:
            raise ConfigError(f"C4A_TELEGRAM_MEDIA_DELIVERY must be one of {', '.join(MEDIA_DELIVERIES)}")
        if not 0 <= self.telegram_media_send_timeout_seconds < self.connector_send_lock_seconds:
            raise ConfigError(
                "C4A_TELEGRAM_MEDIA_SEND_TIMEOUT_SECONDS must be below C4A_CONNECTOR_SEND_LOCK_SECONDS"
                " (0: two thirds of it)"
            )
        for name in ("private_chat_per_second", "group_per_minute", "bot_per_second"):
            if getattr(self, f"telegram_{name}") <= 0:
                raise ConfigError(f"C4A_TELEGRAM_{name.upper()} must be positive")
        for name in ("private_chat_burst", "group_burst", "bot_burst"):
            if getattr(self, f"telegram_{name}") < 1:
                raise ConfigError(f"C4A_TELEGRAM_{name.upper()} must be at least 1")
