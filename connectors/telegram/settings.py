"""Every setting of the Telegram connector; env var = C4A_ + the field name in upper case."""

from __future__ import annotations

import dataclasses
import re

from services.runtime.config import ConfigError, RuntimeSettings

INBOUND_MODES = ("webhook", "polling", "off")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TelegramSettings(RuntimeSettings):
    grpc_port: int = 18401

    # The bot, as BotFather gave it ("123456:ABC..."). Never logged (not even in a repr).
    telegram_bot_token: str = dataclasses.field(default="", repr=False)
    # The Bot API server; tests and the local platform point it at the emulator.
    telegram_api_url: str = "https://api.telegram.org"
    # The account this connector serves (the bot id); derived from the token when empty.
    telegram_account_id: str = ""

    # How updates come in: webhook (Telegram POSTs to us), polling (getUpdates), off.
    telegram_inbound_mode: str = "polling"
    # Webhook mode: where our own HTTP server listens, and the path Telegram posts to.
    telegram_webhook_host: str = "127.0.0.1"
    telegram_webhook_port: int = 18411
    telegram_webhook_path: str = "/telegram/webhook"
    # The public https URL Telegram reaches the path above at; when set, setWebhook is called at
    # start-up. Empty: the webhook is registered by someone else (a deployment job, a test).
    telegram_webhook_public_url: str = ""
    # Echoed by Telegram in X-Telegram-Bot-Api-Secret-Token; required in webhook mode.
    telegram_webhook_secret: str = dataclasses.field(default="", repr=False)
    # Polling mode: long-poll wait per getUpdates call, and the backoff after a failed one.
    telegram_poll_timeout_seconds: int = 25
    telegram_poll_backoff_max_seconds: float = 30.0

    # Bot API HTTP client.
    telegram_http_timeout_seconds: float = 10.0
    telegram_http_connect_timeout_seconds: float = 3.0
    telegram_http_max_connections: int = 100
    telegram_health_timeout_seconds: float = 2.0

    # Send limits, enforced across replicas in Redis before Telegram is called. Telegram allows
    # about 1 message/s per private chat (short bursts), 20/min per group, 30/s per bot.
    telegram_private_chat_per_second: float = 1.0
    telegram_private_chat_burst: int = 3
    telegram_group_per_minute: float = 20.0
    telegram_group_burst: int = 10
    telegram_bot_per_second: float = 30.0
    telegram_bot_burst: int = 30

    # Every Redis key of this connector starts with this.
    telegram_redis_prefix: str = "c4a:telegram"
    # Redis connections per process; a command waits this long for a free one, then fails
    # (the send answers UNAVAILABLE).
    telegram_redis_max_connections: int = 100
    telegram_redis_wait_seconds: float = 5.0
    # How long a send's result is kept to answer repeats (router retries, replays) without
    # sending twice.
    telegram_sent_ttl_seconds: int = 3 * 24 * 3600
    # How long one replica may hold a send before a concurrent duplicate may try it again.
    # Longer than the HTTP timeout, so a slow send is never duplicated.
    telegram_send_lock_seconds: float = 30.0
    # How long a handled update_id is remembered to drop redeliveries of it. Keep it under a
    # week: after a week without updates Telegram may start its ids again.
    telegram_update_ttl_seconds: int = 3 * 24 * 3600

    @property
    def bot_id(self) -> str:
        return self.telegram_account_id or self.telegram_bot_token.split(":", 1)[0]

    def validate(self) -> None:
        """Fail at start-up, naming the variable, instead of on the first message."""
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
        for name in ("private_chat_per_second", "group_per_minute", "bot_per_second"):
            if getattr(self, f"telegram_{name}") <= 0:
                raise ConfigError(f"C4A_TELEGRAM_{name.upper()} must be positive")
        for name in ("private_chat_burst", "group_burst", "bot_burst"):
            if getattr(self, f"telegram_{name}") < 1:
                raise ConfigError(f"C4A_TELEGRAM_{name.upper()} must be at least 1")
