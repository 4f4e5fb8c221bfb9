"""What the WhatsApp emulator remembers on top of the shared Meta state: its
limits and status policy, the rate limiters, ids, and how webhooks for a
business number are wrapped and queued."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import time
from typing import Any

from ..meta.ratelimit import Gcra
from ..meta.recording import RecordLog
from ..meta.settings import Settings
from ..meta.state import MetaState
from ..meta.wire import meta_dumps
from .config import WhatsAppConfig, WhatsAppLimits, validate_limits, validate_status_policy
from .errors import pair_limited, throughput_limited


class WhatsAppState(MetaState):
    config: WhatsAppConfig

    def __init__(self, config: WhatsAppConfig):
        super().__init__(config, throughput_limited)
        self.throughput = Gcra(1.0, 1)
        self.pair = Gcra(1.0, 1)
        limits = config.limits if config.limits_enabled else dataclasses.replace(config.limits, enabled=False)
        self.limits = Settings(limits, validate_limits, self._rebuild_limiters)
        self.status_policy = Settings(config.status_policy, validate_status_policy)
        self.inbound = RecordLog(config.record_cap)
        self._wamid_seq = itertools.count(1)

    def _rebuild_limiters(self, limits: WhatsAppLimits) -> None:
        self.throughput = Gcra(limits.throughput_per_s, limits.throughput_burst)
        self.pair = Gcra(1.0 / limits.pair_interval_s, limits.pair_burst)

    def reset_extra(self) -> None:
        self.inbound.clear()
        self._wamid_seq = itertools.count(1)
        self._rebuild_limiters(self.limits.current)

    # --- phone numbers and ids ------------------------------------------------

    def accepts_phone_number(self, phone_number_id: str) -> bool:
        if self.config.phone_number_ids:
            return phone_number_id in self.config.phone_number_ids
        return phone_number_id.isdigit()

    @staticmethod
    def display_phone_number(phone_number_id: str) -> str:
        # A stable, plausible test number per business number id.
        digest = int.from_bytes(hashlib.sha256(phone_number_id.encode()).digest()[:4], "big")
        return f"1555{digest % 10**7:07d}"

    def new_wamid(self, recipient: str) -> str:
        """`wamid.` + base64 of a recipient-and-random payload, shaped like the real ones."""
        unique = f"{next(self._wamid_seq):06X}{self.rng.getrandbits(48):012X}"
        raw = b"\x1c\x18" + bytes([len(recipient) % 256]) + recipient.encode() + b"\x15\x02\x00\x12\x18\x14" \
            + unique.encode() + b"\x00"
        return "wamid." + base64.b64encode(raw).decode()

    def window_seconds(self) -> float:
        return self.limits.current.window_hours * 3600.0

    def window_applies(self) -> bool:
        return self.limits.current.window_enabled

    # --- rate limits ------------------------------------------------------------

    def check_limits(self, phone_number_id: str, recipient: str) -> None:
        """Raises 130429 / 131056 when a send is over a limit; counts it otherwise."""
        limits = self.limits.current
        if not limits.enabled:
            return
        now = time.monotonic()
        if self.throughput.peek(phone_number_id, now) > 0:
            raise throughput_limited()
        pair_key = (phone_number_id, recipient)
        if limits.pair_enabled and self.pair.peek(pair_key, now) > 0:
            raise pair_limited()
        self.throughput.take(phone_number_id, now)
        if limits.pair_enabled:
            self.pair.take(pair_key, now)

    # --- webhooks -----------------------------------------------------------------

    def envelope(self, phone_number_id: str, value: dict[str, Any]) -> dict[str, Any]:
        return {
            "object": "whatsapp_business_account",
            "entry": [{
                "id": self.config.waba_id,
                "changes": [{
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": self.display_phone_number(phone_number_id),
                                     "phone_number_id": phone_number_id},
                        **value,
                    },
                    "field": "messages",
                }],
            }],
        }

    def send_webhook(self, phone_number_id: str, value: dict[str, Any], info: dict[str, Any],
                     copies: int = 1) -> bytes:
        """Queue a webhook (the same bytes `copies` times); the exact bytes sent."""
        body = meta_dumps(self.envelope(phone_number_id, value))
        for _ in range(copies):
            self.webhooks.send(phone_number_id, body, {"phone_number_id": phone_number_id, **info})
        return body
