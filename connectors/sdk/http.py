"""The platform HTTP client every connector uses: one pooled aiohttp session per
process, timeouts on every call, and the outcome of the last call for CheckHealth.

A timeout or connection error becomes UNAVAILABLE (transient); any HTTP answer
is returned as is, for the connector to map with its platform's error rules.
Secrets (tokens in URLs or headers) are redacted from every text it produces.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from connectors.sdk import metrics
from services.runtime.errors import Unavailable


@dataclasses.dataclass
class PlatformCheck:
    """What the last call told about the platform, for CheckHealth."""

    reachable: bool = False
    latency_seconds: float = 0.0
    check_time: float = 0.0
    detail: str = "no call made yet"


@dataclasses.dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object, or {} (an HTML error page from a proxy: the status decides)."""
        try:
            value = json.loads(self.body)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def retry_after_header(self) -> float | None:
        value = self.headers.get("Retry-After", "")
        try:
            seconds = float(value)
        except ValueError:
            return None
        return seconds if seconds > 0 else None


def _outcome(status: int) -> str:
    return "429" if status == 429 else f"{status // 100}xx"


class PlatformHttp:
    def __init__(
        self,
        connector: str,
        *,
        timeout_seconds: float = 10.0,
        connect_timeout_seconds: float = 3.0,
        max_connections: int = 100,
        secrets: Iterable[str] = (),
    ) -> None:
        self.connector = connector
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds, sock_connect=connect_timeout_seconds)
        self._connect_timeout = connect_timeout_seconds
        self._max_connections = max_connections
        self._secrets = [secret for secret in secrets if secret]
        self._session: aiohttp.ClientSession | None = None
        self.last_check = PlatformCheck()

    async def open(self) -> PlatformHttp:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300),
            timeout=self._timeout,
            # Proxies from the environment would see the tokens; the deployment sets none.
            trust_env=False,
            raise_for_status=False,
        )
        return self

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<secret>")
        return text

    async def request(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        timeout_seconds: float | None = None,
    ) -> HttpAnswer:
        if self._session is None:
            raise RuntimeError("PlatformHttp.open() was not called")
        timeout = (
            aiohttp.ClientTimeout(total=timeout_seconds, sock_connect=min(self._connect_timeout, timeout_seconds))
            if timeout_seconds is not None
            else None
        )
        started = time.perf_counter()
        try:
            async with self._session.request(
                method, url, json=json_body, data=data, headers=headers, params=params, timeout=timeout
            ) as response:
                answer = HttpAnswer(response.status, response.headers, await response.read())
        except asyncio.TimeoutError:
            self._note(started, reachable=False, detail=f"{operation}: timed out")
            metrics.API_CALLS.labels(self.connector, operation, "timeout").inc()
            raise Unavailable(f"{self.connector} {operation} timed out") from None
        except aiohttp.ClientError as error:
            detail = self.redact(f"{type(error).__name__}: {error}")
            self._note(started, reachable=False, detail=f"{operation}: {detail}")
            metrics.API_CALLS.labels(self.connector, operation, "connection_error").inc()
            raise Unavailable(f"{self.connector} {operation}: {detail}") from None
        finally:
            metrics.API_SECONDS.labels(self.connector, operation).observe(time.perf_counter() - started)
        metrics.API_CALLS.labels(self.connector, operation, _outcome(answer.status)).inc()
        self._note(started, reachable=answer.status < 500, detail="" if answer.status < 400 else f"{operation}: HTTP {answer.status}")
        return answer

    def _note(self, started: float, *, reachable: bool, detail: str) -> None:
        check = self.last_check
        check.reachable = reachable
        check.latency_seconds = time.perf_counter() - started
        check.check_time = time.time()
        check.detail = detail
