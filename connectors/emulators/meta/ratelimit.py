"""Rate limits as GCRA (a token bucket kept as one "theoretical arrival time"
per key), in memory.

`rate_per_s` sustained, up to `burst` at once. `peek` says how long a call
would have to wait without counting it, so several limits can be checked
before any of them is charged (a refused send uses up nothing).
"""

from __future__ import annotations

import time
from collections.abc import Hashable


class Gcra:
    _PRUNE_AT = 100_000

    def __init__(self, rate_per_s: float, burst: int):
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.interval = 1.0 / rate_per_s
        self.tolerance = self.interval * (burst - 1)
        self._tat: dict[Hashable, float] = {}

    def peek(self, key: Hashable, now: float | None = None) -> float:
        """Seconds until a call for `key` is allowed (0 when it is now)."""
        now = time.monotonic() if now is None else now
        tat = max(self._tat.get(key, now), now)
        return max(0.0, tat - self.tolerance - now)

    def take(self, key: Hashable, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._tat) >= self._PRUNE_AT:
            self._prune(now)
        self._tat[key] = max(self._tat.get(key, now), now) + self.interval

    def _prune(self, now: float) -> None:
        for key in [key for key, tat in self._tat.items() if tat <= now]:
            del self._tat[key]

    def clear(self) -> None:
        self._tat.clear()
