"""Injected faults for the Graph API.

    error_rate, error_status    a share of sends answer a 5xx Graph error (transient)
    throttle_rate, retry_after  a share of sends answer the platform's rate-limit error;
                                retry_after > 0 adds a `Retry-After` header (0: none)
    fail_next, fail_next_429    the next N sends fail (5xx, then rate limit), whatever the rates
    latency_ms                  every send waits this long before it is answered
    down                        every Graph API call answers 503 (the control API still works)

Random faults draw from one seeded RNG in a fixed order, so the same seed and
the same sequence of sends give the same faults.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

from .errors import GraphError, server_error

ThrottleError = Callable[[int | None], GraphError]


@dataclasses.dataclass
class FaultConfig:
    error_rate: float = 0.0
    error_status: int = 500
    throttle_rate: float = 0.0
    retry_after: int = 1
    fail_next: int = 0
    fail_next_429: int = 0
    latency_ms: float = 0.0
    down: bool = False
    seed: int | None = None


_FIELDS = {field.name for field in dataclasses.fields(FaultConfig)}


def parse_fault_config(body: Any, base: FaultConfig | None = None) -> FaultConfig:
    """A config from a control API body; fields not given come from `base` (or the defaults)."""
    if not isinstance(body, dict):
        raise TypeError("the body must be a JSON object")
    unknown = set(body) - _FIELDS
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    config = dataclasses.replace(base) if base is not None else FaultConfig()
    for name, value in body.items():
        if name == "seed":
            config.seed = None if value is None else int(value)
        elif name == "down":
            if not isinstance(value, bool):
                raise ValueError("down must be true or false")
            config.down = value
        elif name == "retry_after":
            config.retry_after = 0 if value is None else int(value)
        elif name in ("error_status", "fail_next", "fail_next_429"):
            setattr(config, name, int(value))
        else:
            setattr(config, name, float(value))
    for name in ("error_rate", "throttle_rate"):
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1")
    if not 500 <= config.error_status <= 599:
        raise ValueError("error_status must be a 5xx status")
    if min(config.retry_after, config.fail_next, config.fail_next_429, config.latency_ms) < 0:
        raise ValueError("retry_after, latency and counters must not be negative")
    return config


@dataclasses.dataclass
class FaultDecision:
    delay_s: float = 0.0
    error: GraphError | None = None


class Faults:
    def __init__(self, default_seed: int | None, throttle_error: ThrottleError):
        self._default_seed = default_seed
        self._throttle_error = throttle_error
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

    def down_error(self) -> GraphError | None:
        return server_error(503) if self.config.down else None

    def throttled(self) -> GraphError:
        return self._throttle_error(self.config.retry_after or None)

    def decide(self) -> FaultDecision:
        """What happens to the next send (call once per send)."""
        c = self.config
        decision = FaultDecision(delay_s=c.latency_ms / 1000.0)
        if c.fail_next > 0:
            c.fail_next -= 1
            decision.error = server_error(c.error_status)
        elif c.fail_next_429 > 0:
            c.fail_next_429 -= 1
            decision.error = self.throttled()
        elif c.error_rate and self.rng.random() < c.error_rate:
            decision.error = server_error(c.error_status)
        elif c.throttle_rate and self.rng.random() < c.throttle_rate:
            decision.error = self.throttled()
        return decision
