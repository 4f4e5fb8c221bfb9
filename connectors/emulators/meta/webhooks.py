"""Signed webhook delivery to the subscribed callback, as Meta does it.

Each webhook is one POST of exact bytes (see wire.meta_dumps) with
`X-Hub-Signature-256` over those bytes. Webhooks of one account (a phone
number, an Instagram account) leave one at a time in the order they were
made, so nothing is reordered while deliveries succeed. A delivery that fails
(non-2xx, connection error, timeout) is retried on its own with exponential
backoff and does not hold back the ones behind it: like Meta, no ordering
promise once something fails. After `max_attempts` it is dropped. Every
attempt is recorded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import random
import time
from typing import Any

import aiohttp

from .handshake import verify_callback
from .media import is_loopback_url
from .recording import RecordLog
from .signing import signature_headers
from .tasks import TaskSet

log = logging.getLogger(__name__)


@dataclasses.dataclass
class WebhookPolicy:
    """Retry schedule: attempt 2 after initial_backoff_s, then doubling up to max_backoff_s."""

    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_attempts: int = 8
    timeout_s: float = 10.0


@dataclasses.dataclass
class Subscription:
    callback_url: str
    verify_token: str
    verified_at: float
    challenge: str


@dataclasses.dataclass
class _Job:
    delivery_id: int
    key: str
    body: bytes
    info: dict[str, Any]
    attempt: int = 0


class WebhookSender:
    def __init__(self, app_secret: str, policy: WebhookPolicy, rng: random.Random, deliveries_cap: int):
        self.app_secret = app_secret
        self.default_policy = policy
        self.policy = dataclasses.replace(policy)
        self.rng = rng
        self.subscription: Subscription | None = None
        self.last_handshake: dict[str, Any] | None = None
        self.deliveries = RecordLog(deliveries_cap)
        self._ids = itertools.count(1)
        self._queues: dict[str, asyncio.Queue[_Job]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._retries = TaskSet()
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), trust_env=False)
        return self._session

    # --- subscription --------------------------------------------------------

    async def subscribe(self, callback_url: str, verify_token: str) -> dict[str, Any]:
        """Handshake with the callback; the subscription is saved only if it answers the challenge."""
        if not is_loopback_url(callback_url):
            result = {"ok": False, "error": "callback_url must be an http(s) URL on a loopback address "
                                            "(the emulator reaches nothing else)"}
        else:
            result = await verify_callback(self.session(), callback_url, verify_token, self.rng,
                                           self.policy.timeout_s)
        self.last_handshake = {"callback_url": callback_url, "at": time.time(), **result}
        if result["ok"]:
            self.subscription = Subscription(callback_url, verify_token, time.time(), result["challenge"])
        return result

    async def subscribe_when_ready(self, callback_url: str, verify_token: str, for_s: float = 120.0) -> None:
        """The startup subscription: the receiver may start after us, so keep trying for a while."""
        deadline = time.monotonic() + for_s
        while self.subscription is None:
            result = await self.subscribe(callback_url, verify_token)
            if result["ok"]:
                log.info("subscribed %s", callback_url)
                return
            if time.monotonic() > deadline:
                log.warning("gave up subscribing %s: %s", callback_url, result.get("error"))
                return
            await asyncio.sleep(0.5)

    def subscription_info(self) -> dict[str, Any] | None:
        return None if self.subscription is None else dataclasses.asdict(self.subscription)

    # --- delivery ------------------------------------------------------------

    def send(self, key: str, body: bytes, info: dict[str, Any]) -> int:
        """Queue one webhook (exact bytes) for the account `key`; its delivery id."""
        job = _Job(next(self._ids), key, body, info)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            self._workers[key] = asyncio.get_running_loop().create_task(self._work(queue), name=f"webhooks {key}")
        queue.put_nowait(job)
        return job.delivery_id

    def pending(self) -> int:
        return sum(queue.qsize() for queue in self._queues.values()) + len(self._retries)

    async def _work(self, queue: asyncio.Queue[_Job]) -> None:
        while True:
            job = await queue.get()
            try:
                await self._attempt(job)
            except Exception:  # one broken delivery must not stop the account's queue
                log.exception("webhook delivery %s failed", job.delivery_id)

    async def _attempt(self, job: _Job) -> None:
        job.attempt += 1
        subscription = self.subscription
        started = time.time()
        record: dict[str, Any] = {"delivery_id": job.delivery_id, "attempt": job.attempt, "http_status": None,
                                  "error": None, "at": started, **job.info}
        if subscription is None:
            record["error"] = "no subscription: not delivered"
            record["body"] = job.body.decode("ascii")
            self.deliveries.add(record)
            return
        headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua",
                   **signature_headers(self.app_secret, job.body)}
        record["url"] = subscription.callback_url
        record["signature"] = headers["X-Hub-Signature-256"]
        try:
            async with self.session().post(
                subscription.callback_url, data=job.body, headers=headers, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout_s),
            ) as response:
                record["http_status"] = response.status
                await response.read()
                if not 200 <= response.status <= 299:
                    record["error"] = f"HTTP {response.status}"
        except TimeoutError:
            record["error"] = "timeout"
        except aiohttp.ClientError as error:
            record["error"] = f"connection error: {error}"
        record["duration_ms"] = round((time.time() - started) * 1000, 3)
        record["body"] = job.body.decode("ascii")
        self.deliveries.add(record)
        if record["error"] is None:
            return
        policy = self.policy
        if job.attempt >= policy.max_attempts:
            log.warning("dropping webhook %s after %d attempts: %s", job.delivery_id, job.attempt, record["error"])
            return
        delay = min(policy.initial_backoff_s * 2 ** (job.attempt - 1), policy.max_backoff_s)
        self._retries.spawn(self._retry(job, delay), name=f"webhook retry {job.delivery_id}")

    async def _retry(self, job: _Job, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._attempt(job)

    # --- lifecycle -----------------------------------------------------------

    def reset(self, keep_subscription: bool = True) -> None:
        for worker in self._workers.values():
            worker.cancel()
        self._workers.clear()
        self._queues.clear()
        self._retries.cancel_all()
        self.deliveries.clear()
        self._ids = itertools.count(1)
        self.policy = dataclasses.replace(self.default_policy)
        if not keep_subscription:
            self.subscription = None
            self.last_handshake = None

    async def close(self) -> None:
        self.reset()
        if self._session is not None:
            await self._session.close()
