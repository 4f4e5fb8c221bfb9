"""Injected faults for the send methods: 5xx, 429, latency, dropped connections.

Random faults draw from one seeded RNG in a fixed order, so the same seed and
the same sequence of sends give the same faults. `fail_next` and
`fail_next_429` are deterministic: the next N sends fail, whatever the rates;
with `fail_after` they start after that many more sends went through (to fail the
second file of a message split into several sends).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from .params import BotApiError, too_many_requests

REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclasses.dataclass
class FaultConfig:
    error_rate: float = 0.0
    error_status: int = 502
    throttle_rate: float = 0.0
    retry_after: int = 3
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    # Close the connection without answering; the send does not happen.
    drop_rate: float = 0.0
    # The send happens (it is in /_emulator/messages) but the answer is lost:
    # the connection closes. A client that retries sends it twice.
    drop_after_send_rate: float = 0.0
    fail_next: int = 0
    fail_next_429: int = 0
    # fail_next / fail_next_429 start after this many sends went through.
    fail_after: int = 0
    seed: int | None = None


_FIELDS = {field.name for field in dataclasses.fields(FaultConfig)}
_RATES = ("error_rate", "throttle_rate", "drop_rate", "drop_after_send_rate")


def parse_fault_config(body: dict[str, Any], base: FaultConfig | None = None) -> FaultConfig:
    """A config from a control API body; fields not given come from `base` (or defaults)."""
    unknown = set(body) - _FIELDS
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    config = dataclasses.replace(base) if base is not None else FaultConfig()
    for name, value in body.items():
        if name == "seed":
            config.seed = None if value is None else int(value)
        elif name in ("error_status", "retry_after", "fail_next", "fail_next_429", "fail_after"):
            setattr(config, name, int(value))
        else:
            setattr(config, name, float(value))
    for name in _RATES:
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1")
    if not 500 <= config.error_status <= 599:
        raise ValueError("error_status must be a 5xx status")
    if config.retry_after < 1:
        raise ValueError("retry_after must be at least 1 second")
    if min(config.latency_ms, config.latency_jitter_ms, config.fail_next, config.fail_next_429, config.fail_after) < 0:
        raise ValueError("latency and counters must not be negative")
    return config


def server_error(status: int) -> BotApiError:
    return BotApiError(status, REASONS.get(status, "Internal Server Error"))


@dataclasses.dataclass
class FaultDecision:
    delay_s: float = 0.0
    drop: bool = False
    drop_after_send: bool = False
    error: BotApiError | None = None


class Faults:
    def __init__(self, default_seed: int | None):
        self._default_seed = default_seed
        self.config = FaultConfig()
        self.rng = random.Random(default_seed)

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        if config.seed is not None:
            self.rng = random.Random(config.seed)

    def reset(self) -> None:
        self.config = FaultConfig()
        self.rng = random.Random(self._default_seed)

    def snapshot(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    @property
    def active(self) -> bool:
        c = self.config
        return bool(
            c.fail_next or c.fail_next_429 or c.latency_ms or c.latency_jitter_ms
            or c.error_rate or c.throttle_rate or c.drop_rate or c.drop_after_send_rate
        )

    def decide(self) -> FaultDecision:
        """What happens to the next send (call once per send)."""
        c = self.config
        decision = FaultDecision()
        if not self.active:
            return decision
        rng = self.rng
        if c.latency_ms or c.latency_jitter_ms:
            jitter = rng.uniform(-c.latency_jitter_ms, c.latency_jitter_ms) if c.latency_jitter_ms else 0.0
            decision.delay_s = max(0.0, c.latency_ms + jitter) / 1000.0
        if (c.fail_next > 0 or c.fail_next_429 > 0) and c.fail_after > 0:
            c.fail_after -= 1  # goes through; the failures come after
        elif c.fail_next > 0:
            c.fail_next -= 1
            decision.error = server_error(c.error_status)
        elif c.fail_next_429 > 0:
            c.fail_next_429 -= 1
            decision.error = too_many_requests(c.retry_after)
        elif c.drop_rate and rng.random() < c.drop_rate:
            decision.drop = True
        elif c.error_rate and rng.random() < c.error_rate:
            decision.error = server_error(c.error_status)
        elif c.throttle_rate and rng.random() < c.throttle_rate:
            decision.error = too_many_requests(c.retry_after)
        elif c.drop_after_send_rate and rng.random() < c.drop_after_send_rate:
            decision.drop_after_send = True
        return decision
