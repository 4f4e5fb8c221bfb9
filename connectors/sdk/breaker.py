"""A circuit breaker per platform account, in each connector process.

Closed: calls go through; `failure_threshold` consecutive platform failures
(unreachable, timed out, 5xx; not throttling, not a refused message) open it.
Open: calls fail fast with UNAVAILABLE and a retry-after (the router defers the
message: it waits, it is not dead-lettered). After the open period one call is
let through as a probe (half-open): success closes the breaker, failure opens
it again for twice as long (up to a maximum). The failure that opens it, and a
failed probe, are answered with the retry-after too, so a message never spends
its last attempt on an outage the breaker has recognised.
"""

from __future__ import annotations

import enum
import logging
import time

from connectors.sdk import metrics
from services.runtime.errors import ServiceError, Unavailable

log = logging.getLogger("chat4all.connector.breaker")


class CircuitState(enum.IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


def is_platform_failure(error: BaseException) -> bool:
    """Failures that say the platform is not working, as opposed to refusing one message."""
    return isinstance(error, Unavailable)


class CircuitBreaker:
    def __init__(
        self,
        connector: str,
        account: str,
        *,
        failure_threshold: int = 3,
        open_seconds: float = 2.0,
        max_open_seconds: float = 30.0,
        clock=time.monotonic,
    ) -> None:
        self.connector, self.account = connector, account
        self.failure_threshold = failure_threshold
        self.open_seconds, self.max_open_seconds = open_seconds, max_open_seconds
        self._clock = clock
        self.state = CircuitState.CLOSED
        self.failures = 0
        self._open_for = open_seconds
        self._opened_at = 0.0
        self._probing = False
        self._set(CircuitState.CLOSED)

    @property
    def retry_after_seconds(self) -> float:
        """How long until a probe may go (0 when closed)."""
        if self.state is CircuitState.CLOSED:
            return 0.0
        return max(0.05, self._opened_at + self._open_for - self._clock())

    @property
    def retry_time(self) -> float:
        """Wall-clock time of the next probe (0 when closed), for CheckHealth."""
        return time.time() + self.retry_after_seconds if self.state is not CircuitState.CLOSED else 0.0

    def admit(self) -> None:
        """Let a call through, or raise UNAVAILABLE with the wait while the breaker is open."""
        if self.state is CircuitState.OPEN and self._clock() >= self._opened_at + self._open_for:
            self._set(CircuitState.HALF_OPEN)
        if self.state is CircuitState.CLOSED:
            return
        if self.state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return
        raise self._fail_fast()

    def cancel(self) -> None:
        """An admitted call did not reach the platform (held back by a rate limit)."""
        self._probing = False

    def succeeded(self) -> None:
        self.failures = 0
        self._probing = False
        if self.state is not CircuitState.CLOSED:
            log.info("circuit closed: the platform answers again", extra=self._labels())
            self._open_for = self.open_seconds
            self._set(CircuitState.CLOSED)

    def failed(self, error: ServiceError) -> ServiceError:
        """Count a failed call; returns the error to answer (with the breaker's wait once open)."""
        if not is_platform_failure(error):
            # The platform answered (a refusal, a throttle): it is up.
            self.succeeded()
            return error
        self._probing = False
        self.failures += 1
        if self.state is CircuitState.HALF_OPEN:
            self._open_for = min(self._open_for * 2, self.max_open_seconds)
            self._open(f"the probe failed: {error.message}")
        elif self.state is CircuitState.CLOSED and self.failures >= self.failure_threshold:
            self._open(f"{self.failures} consecutive failures, the last: {error.message}")
        if self.state is CircuitState.CLOSED:
            return error
        return Unavailable(f"{error.message} (circuit open for account {self.account})", retry_after_seconds=self.retry_after_seconds)

    def _open(self, why: str) -> None:
        self._opened_at = self._clock()
        log.warning("circuit opened for %.1fs: %s", self._open_for, why, extra=self._labels())
        self._set(CircuitState.OPEN)

    def _fail_fast(self) -> Unavailable:
        return Unavailable(
            f"the circuit for {self.connector} account {self.account} is open after platform failures; "
            f"retry in {self.retry_after_seconds:.2f}s",
            retry_after_seconds=self.retry_after_seconds,
        )

    def _set(self, state: CircuitState) -> None:
        if state is not self.state:
            metrics.CIRCUIT_TRANSITIONS.labels(self.connector, self.account, state.name.lower()).inc()
        self.state = state
        metrics.CIRCUIT_STATE.labels(self.connector, self.account).set(int(state))

    def _labels(self) -> dict[str, str]:
        return {"connector": self.connector, "account": self.account}
