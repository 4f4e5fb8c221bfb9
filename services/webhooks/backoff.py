"""When to try a failed delivery again: exponential backoff with "equal jitter".

The wait after failed attempt n is d/2 + random(0, d/2) with d = min(cap, base * 2^(n-1)):
it keeps growing (a struggling endpoint gets room), yet endpoints that failed together do not
come back all at once (a thundering herd right after an outage).
"""

from __future__ import annotations

import random


def retry_delay(failed_attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    exponent = min(max(failed_attempt, 1) - 1, 62)  # 2^62 already exceeds any cap; avoids huge floats
    ceiling = min(cap, base * 2.0**exponent)
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
