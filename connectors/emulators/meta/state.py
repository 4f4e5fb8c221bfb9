"""What a Meta emulator remembers, common to both platforms: requests received,
messages accepted, media, contacts (the 24 h customer-service window), faults,
webhook delivery and the background work in flight."""

from __future__ import annotations

import random
import string
import time
from typing import Any

from .config import MetaConfig
from .faults import Faults, ThrottleError
from .media import MediaStore
from .recording import RecordLog
from .settings import Settings
from .tasks import TaskSet
from .webhooks import WebhookPolicy, WebhookSender

_TRACE_ALPHABET = string.ascii_letters + string.digits + "_-"


def _validate_webhook_policy(policy: WebhookPolicy) -> None:
    if policy.max_attempts < 1 or policy.timeout_s <= 0 or policy.initial_backoff_s < 0 or policy.max_backoff_s < 0:
        raise ValueError("max_attempts must be at least 1, timeout_s positive and backoffs not negative")


class MetaState:
    def __init__(self, config: MetaConfig, throttle_error: ThrottleError):
        self.config = config
        self.rng = random.Random(config.seed)
        self.requests = RecordLog(config.record_cap)
        self.messages = RecordLog(config.record_cap)
        self.faults = Faults(config.seed, throttle_error)
        self.media = MediaStore(config.media_store_bytes, random.Random(self.rng.random()))
        self.webhooks = WebhookSender(config.app_secret, config.webhook, random.Random(self.rng.random()),
                                      config.deliveries_cap)
        self.webhook_policy = Settings(config.webhook, _validate_webhook_policy, self._set_webhook_policy)
        self.tasks = TaskSet()
        # (account, user) -> {"last_inbound_time": unix s | None, "available": bool}
        self.contacts: dict[tuple[str, str], dict[str, Any]] = {}

    def _set_webhook_policy(self, policy: WebhookPolicy) -> None:
        self.webhooks.policy = policy

    def token_ok(self, token: str | None) -> bool:
        return token is not None and token in self.config.access_tokens

    def trace_id(self) -> str:
        return "A" + "".join(self.rng.choice(_TRACE_ALPHABET) for _ in range(22))

    # --- contacts and the customer-service window ---------------------------

    def contact(self, account: str, user: str) -> dict[str, Any]:
        return self.contacts.setdefault((account, user), {"last_inbound_time": None, "available": True})

    def note_inbound(self, account: str, user: str, at: float | None = None) -> None:
        contact = self.contact(account, user)
        at = time.time() if at is None else at
        if contact["last_inbound_time"] is None or at > contact["last_inbound_time"]:
            contact["last_inbound_time"] = at

    def window_expires_at(self, account: str, user: str, window_s: float) -> float | None:
        contact = self.contacts.get((account, user))
        if contact is None or contact["last_inbound_time"] is None:
            return None
        return float(contact["last_inbound_time"]) + window_s

    def in_window(self, account: str, user: str, window_s: float) -> bool:
        expires = self.window_expires_at(account, user, window_s)
        return expires is not None and time.time() < expires

    def contact_view(self, account: str, user: str, window_s: float) -> dict[str, Any]:
        contact = self.contacts.get((account, user)) or {"last_inbound_time": None, "available": True}
        expires = self.window_expires_at(account, user, window_s)
        return {"account": account, "user": user, **contact, "window_expires_at": expires,
                "window_open": expires is not None and time.time() < expires}

    # --- lifecycle ------------------------------------------------------------

    def reset(self, keep_subscription: bool = True) -> None:
        """Back to the start state; the webhook subscription stays unless asked otherwise."""
        self.tasks.cancel_all()
        self.webhooks.reset(keep_subscription)
        self.webhook_policy.reset()
        self.rng = random.Random(self.config.seed)
        self.requests.clear()
        self.messages.clear()
        self.faults.reset()
        self.media.clear()
        self.media.rng = random.Random(self.rng.random())
        self.webhooks.rng = random.Random(self.rng.random())
        self.contacts.clear()
