"""Every setting of the WhatsApp Cloud API emulator, with the platform's numbers."""

from __future__ import annotations

import dataclasses

from ..meta.config import MetaConfig

KiB = 1024
MiB = 1024 * 1024

# Largest media per message type (Cloud API; animated stickers may reach 500 KB, not modelled).
MEDIA_LIMIT_BYTES = {"image": 5 * MiB, "audio": 16 * MiB, "video": 16 * MiB, "document": 100 * MiB,
                     "sticker": 100 * KiB}
# Content types the platform takes per type (documents: any). Checked when a link's server names one.
MEDIA_TYPES = {
    "image": ("image/jpeg", "image/png"),
    "sticker": ("image/webp",),
    "audio": ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"),
    "video": ("video/mp4", "video/3gpp"),
}
TEXT_LIMIT_CHARS = 4096
CAPTION_LIMIT_CHARS = 1024
STATUSES = ("sent", "delivered", "read", "failed")


@dataclasses.dataclass
class WhatsAppLimits:
    """`enabled` false turns both rate limits off (not the window)."""

    enabled: bool = True
    # Throughput per business phone number (default tier 80/s; up to 1,000).
    throughput_per_s: float = 80.0
    throughput_burst: int = 80
    # Pair limit per (phone number, recipient): about one message every 6 s, bursts up to 45.
    pair_enabled: bool = True
    pair_interval_s: float = 6.0
    pair_burst: int = 45
    # The customer-service window for free-form messages.
    window_enabled: bool = True
    window_hours: float = 24.0


@dataclasses.dataclass
class StatusPolicy:
    """Status webhooks sent after each accepted send that does not fail."""

    auto: list[str] = dataclasses.field(default_factory=lambda: ["sent", "delivered"])
    # Pause before each status webhook (and before a failed one).
    delay_ms: float = 50.0
    # Send every status webhook twice (Meta's redeliveries).
    duplicate: bool = False
    # Send the auto statuses last-first (e.g. delivered before sent).
    reverse_order: bool = False
    # Attach `conversation` and `pricing` objects to sent/delivered statuses.
    pricing: bool = True


def validate_limits(limits: WhatsAppLimits) -> None:
    if min(limits.throughput_per_s, limits.pair_interval_s, limits.window_hours) <= 0:
        raise ValueError("throughput_per_s, pair_interval_s and window_hours must be positive")
    if min(limits.throughput_burst, limits.pair_burst) < 1:
        raise ValueError("bursts must be at least 1")


def validate_status_policy(policy: StatusPolicy) -> None:
    unknown = [status for status in policy.auto if status not in ("sent", "delivered", "read")]
    if unknown:
        raise ValueError(f"auto statuses must be among sent, delivered, read; got {unknown}")
    if policy.delay_ms < 0:
        raise ValueError("delay_ms must not be negative")


@dataclasses.dataclass
class WhatsAppConfig(MetaConfig):
    port: int = 8082
    # Empty: any phone_number_id is a business number; otherwise only these.
    phone_number_ids: tuple[str, ...] = ()
    # The WhatsApp Business Account id in webhook entries.
    waba_id: str = "102290129340398"
    limits: WhatsAppLimits = dataclasses.field(default_factory=WhatsAppLimits)
    status_policy: StatusPolicy = dataclasses.field(default_factory=StatusPolicy)
