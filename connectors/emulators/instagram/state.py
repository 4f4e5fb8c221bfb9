"""What the Instagram emulator remembers on top of the shared Meta state:
accounts and tokens, limits, the follow-up policy, ids, and how webhooks for
an account are wrapped and queued."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import itertools
import time
from typing import Any

from aiohttp import web

from ..meta.errors import unknown_object
from ..meta.ratelimit import Gcra
from ..meta.settings import Settings
from ..meta.state import MetaState
from ..meta.wire import meta_dumps
from .config import DEFAULT_ACCOUNT, InstagramConfig, InstagramLimits, validate_limits, validate_policy
from .errors import rate_limited

CDN_PATH = "/ig_messaging_cdn/"


def now_ms() -> int:
    return int(time.time() * 1000)


class InstagramState(MetaState):
    config: InstagramConfig

    def __init__(self, config: InstagramConfig):
        super().__init__(config, rate_limited)
        self.text_calls = Gcra(1.0, 1)
        self.av_calls = Gcra(1.0, 1)
        limits = config.limits if config.limits_enabled else dataclasses.replace(config.limits, enabled=False)
        self.limits = Settings(limits, validate_limits, self._rebuild_limiters)
        self.policy = Settings(config.policy, validate_policy)
        self._mid_seq = itertools.count(1)

    def _rebuild_limiters(self, limits: InstagramLimits) -> None:
        self.text_calls = Gcra(limits.text_per_s, limits.text_burst)
        self.av_calls = Gcra(limits.av_per_s, limits.av_burst)

    def reset_extra(self) -> None:
        self._mid_seq = itertools.count(1)
        self._rebuild_limiters(self.limits.current)

    # --- accounts ----------------------------------------------------------------

    @property
    def default_account(self) -> str:
        return self.config.ig_user_ids[0] if self.config.ig_user_ids else DEFAULT_ACCOUNT

    def accepts_account(self, ig_user_id: str) -> bool:
        if self.config.ig_user_ids:
            return ig_user_id in self.config.ig_user_ids
        return ig_user_id.isdigit()

    def account_for(self, node: str, token: str) -> str:
        """The account a send acts for: `me` is the token's; an explicit id must be the token's too."""
        bound = self.config.token_accounts.get(token)
        if node == "me":
            return bound or self.default_account
        if not self.accepts_account(node) or (bound is not None and bound != node):
            raise unknown_object(node, "post")
        return node

    def new_mid(self, account: str) -> str:
        """Like real message ids: base64 of "ig_message_item:1:IGMessageThread:..." (starts "aWdf")."""
        unique = f"{next(self._mid_seq)}{self.rng.getrandbits(40):012d}"
        raw = f"ig_message_item:1:IGMessageThread:{account}:{unique}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def window_seconds(self, human_agent: bool = False) -> float:
        limits = self.limits.current
        return limits.human_agent_days * 86400.0 if human_agent else limits.window_hours * 3600.0

    # --- limits ----------------------------------------------------------------------

    def check_limits(self, account: str, audio_or_video: bool) -> None:
        """Raises 613 when the account's calls of this kind are over the limit; counts the call otherwise."""
        if not self.limits.current.enabled:
            return
        bucket = self.av_calls if audio_or_video else self.text_calls
        now = time.monotonic()
        if bucket.peek(account, now) > 0:
            raise rate_limited()
        bucket.take(account, now)

    # --- media the emulator serves (injected inbound attachments) ---------------------

    def _signature(self, media_id: str) -> str:
        return hmac.new(self.config.app_secret.encode(), media_id.encode(), hashlib.sha256).hexdigest()[:32]

    def media_url(self, request: web.Request, media_id: str) -> str:
        return f"{request.url.origin()}{CDN_PATH}?asset_id={media_id}&signature={self._signature(media_id)}"

    def signature_ok(self, media_id: str, signature: str) -> bool:
        return hmac.compare_digest(self._signature(media_id), signature)

    # --- webhooks ------------------------------------------------------------------------

    def send_event(self, account: str, event: dict[str, Any], info: dict[str, Any], copies: int = 1) -> bytes:
        """Queue a webhook carrying one messaging event (the same bytes `copies` times); the bytes."""
        body = meta_dumps({"object": "instagram",
                           "entry": [{"time": now_ms(), "id": account, "messaging": [event]}]})
        for _ in range(copies):
            self.webhooks.send(account, body, {"ig_user_id": account, **info})
        return body
