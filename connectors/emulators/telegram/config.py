"""Every setting of the Telegram emulator, with defaults that run locally.

The limits below are the Cloud Bot API's documented ones; `limits.py` enforces
the rate limits, `params.py` and `media.py` the size limits.
"""

from __future__ import annotations

import dataclasses

MiB = 1024 * 1024

# Cloud Bot API file limits (a local Bot API server allows 2,000 MB uploads): multipart
# uploads 10 MB for photos, 50 MB for other files; by URL 5 MB for photos, 20 MB for others.
UPLOAD_LIMIT_BYTES = 50 * MiB
UPLOAD_PHOTO_LIMIT_BYTES = 10 * MiB
DOWNLOAD_LIMIT_BYTES = 20 * MiB
URL_LIMIT_BYTES = 20 * MiB
URL_PHOTO_LIMIT_BYTES = 5 * MiB

TEXT_LIMIT_CHARS = 4096
CAPTION_LIMIT_CHARS = 1024

# getUpdates: the real server clamps timeout to [0, 50] and limit to [1, 100].
LONG_POLL_MAX_TIMEOUT_S = 50
# An update that wakes a long poll is answered after this pause, so that a
# burst arriving together goes out in one response, as the real server does.
LONG_POLL_BATCH_S = 0.002
# A 409 Conflict answered less than this long after the previous one waits
# out the rest, like the real server (it stops runaway polling loops).
CONFLICT_PAUSE_S = 3.0


@dataclasses.dataclass
class RateLimits:
    """Flood limits of the real platform; `enabled` false turns all off."""

    enabled: bool = True
    # About one message a second to the same private chat, short bursts tolerated.
    private_chat_per_s: float = 1.0
    private_chat_burst: int = 3
    # 20 messages a minute to the same group, supergroup or channel.
    group_chat_per_min: float = 20.0
    group_chat_burst: int = 20
    # About 30 messages a second per bot overall.
    bot_per_s: float = 30.0
    bot_burst: int = 30
    # setWebhook with a URL at most once a second (429 retry after 1).
    set_webhook_interval_s: float = 1.0
    # A getUpdates repeated with the same offset within 3 s and a timeout under
    # 3 s is held as a 3 s long poll, as the real server does to stop busy loops.
    get_updates_min_timeout: bool = True


@dataclasses.dataclass
class WebhookPolicy:
    """How the emulator retries a webhook delivery that failed.

    The real platform retries at once, then after 2, 4, 8 ... seconds (capped
    near a minute) for up to 24 h, honouring a Retry-After header; here the
    schedule is the same shape, faster by default and bounded by attempts.
    """

    initial_backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    max_attempts: int = 12
    timeout_s: float = 10.0


@dataclasses.dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 8081
    # Empty: any well-formed token is a bot; otherwise only these are.
    tokens: tuple[str, ...] = ()
    seed: int | None = None
    # In-memory history kept for the control API (oldest dropped first).
    record_cap: int = 200_000
    message_cap: int = 200_000
    # Bytes of uploaded and injected files kept for download (oldest evicted).
    file_store_bytes: int = 512 * MiB
    webhook_deliveries_cap: int = 10_000
    limits: RateLimits = dataclasses.field(default_factory=RateLimits)
    webhook: WebhookPolicy = dataclasses.field(default_factory=WebhookPolicy)
