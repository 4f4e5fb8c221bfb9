"""Every setting of the Instagram Messaging emulator, with the platform's numbers."""

from __future__ import annotations

import dataclasses

from ..meta.config import MetaConfig

MiB = 1024 * 1024

TEXT_LIMIT_CHARS = 1000
ATTACHMENT_TYPES = ("image", "audio", "video", "file")
# Attachment sizes the platform takes (files: same as video, not documented separately).
ATTACHMENT_LIMIT_BYTES = {"image": 8 * MiB, "audio": 25 * MiB, "video": 25 * MiB, "file": 25 * MiB}
DEFAULT_ACCOUNT = "17841400000000001"


@dataclasses.dataclass
class InstagramLimits:
    """Send API call limits per account; `enabled` false turns them off (not the window)."""

    enabled: bool = True
    # Text, links, images, files (and reactions, stickers): 300 calls/s.
    text_per_s: float = 300.0
    text_burst: int = 300
    # Audio and video: 10 calls/s.
    av_per_s: float = 10.0
    av_burst: int = 10
    # 24 h reply window; a HUMAN_AGENT tag extends it to 7 days.
    window_enabled: bool = True
    window_hours: float = 24.0
    human_agent_days: float = 7.0


@dataclasses.dataclass
class InstagramPolicy:
    """Webhooks that follow each accepted send."""

    # The message_echoes webhook (is_echo: true), as when the app subscribes to echoes.
    echo: bool = True
    # A read receipt from the user after each send.
    auto_read: bool = False
    delay_ms: float = 50.0
    # Send every follow-up webhook twice (Meta's redeliveries).
    duplicate: bool = False


def validate_limits(limits: InstagramLimits) -> None:
    if min(limits.text_per_s, limits.av_per_s, limits.window_hours, limits.human_agent_days) <= 0:
        raise ValueError("rates and windows must be positive")
    if min(limits.text_burst, limits.av_burst) < 1:
        raise ValueError("bursts must be at least 1")


def validate_policy(policy: InstagramPolicy) -> None:
    if policy.delay_ms < 0:
        raise ValueError("delay_ms must not be negative")


@dataclasses.dataclass
class InstagramConfig(MetaConfig):
    port: int = 8083
    # Empty: any numeric ig_user_id is an account; otherwise only these. The first is `me`
    # for tokens not bound to an account.
    ig_user_ids: tuple[str, ...] = ()
    # token -> ig_user_id, for tokens given as TOKEN=IG_USER_ID.
    token_accounts: dict[str, str] = dataclasses.field(default_factory=dict)
    limits: InstagramLimits = dataclasses.field(default_factory=InstagramLimits)
    policy: InstagramPolicy = dataclasses.field(default_factory=InstagramPolicy)
