"""The Telegram Bot API over HTTP: one pooled aiohttp session per process.

Every call goes to `{api_url}/bot<token>/<method>` with a JSON body, and every
answer is `{"ok":true,"result":..}` or `{"ok":false,"error_code":N,"description":..}`.
Failures become the runtime's errors, which are MessageConnector's error contract:

  429 (with parameters.retry_after)      RESOURCE_EXHAUSTED + that retry-after
  5xx, timeout, connection error         UNAVAILABLE (transient)
  401 (the token is rejected)            UNAUTHENTICATED (the contract's code for
                                         rejected credentials; permanent: an operator fixes it)
  403 (blocked by the user, not a        FAILED_PRECONDITION (permanent in this state)
       member), 400 "chat not found"
       (never started the bot), 400 after
       a group became a supergroup, 404, 409
  other 4xx                              INVALID_ARGUMENT (this message is rejected as such)

The token is part of every URL, so nothing here logs a URL or an aiohttp
exception as is: texts pass through `redact` first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp

from connectors.telegram import metrics
from services.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    ServiceError,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger("chat4all.telegram.bot_api")

# Telegram omits retry_after only in odd cases; one second is its usual smallest answer.
DEFAULT_RETRY_AFTER_SECONDS = 1.0


class PlatformCheck:
    """What the last call told about the platform, for CheckHealth."""

    __slots__ = ("reachable", "latency_seconds", "check_time", "detail")

    def __init__(self) -> None:
        self.reachable = False
        self.latency_seconds = 0.0
        self.check_time = 0.0
        self.detail = "no call made yet"


class BotApi:
    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout_seconds: float = 10.0,
        connect_timeout_seconds: float = 3.0,
        max_connections: int = 100,
    ) -> None:
        self._base = f"{api_url.rstrip('/')}/bot{token}/"
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds, sock_connect=connect_timeout_seconds)
        self._connect_timeout = connect_timeout_seconds
        self._timeout_seconds = timeout_seconds
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self.last_check = PlatformCheck()

    async def open(self) -> BotApi:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300),
            timeout=self._timeout,
            # Proxies from the environment would see the token; the deployment sets none.
            trust_env=False,
            raise_for_status=False,
        )
        return self

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text

    # Methods ------------------------------------------------------------------------

    async def send_message(self, chat_id: int | str, text: str) -> dict[str, Any]:
        return await self.call("sendMessage", {"chat_id": chat_id, "text": text})

    async def get_me(self, timeout_seconds: float | None = None) -> dict[str, Any]:
        return await self.call("getMe", {}, timeout_seconds=timeout_seconds)

    async def get_updates(self, offset: int | None, timeout_seconds: int, allowed_updates: list[str]) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"timeout": timeout_seconds, "allowed_updates": allowed_updates}
        if offset is not None:
            params["offset"] = offset
        # The HTTP wait covers the long poll plus the usual round trip.
        return await self.call("getUpdates", params, timeout_seconds=timeout_seconds + self._timeout_seconds)

    async def set_webhook(self, url: str, secret_token: str, allowed_updates: list[str]) -> bool:
        # One connection: Telegram then delivers one update at a time, in update_id order, and
        # retries a failed one before the next, which is what keeps a chat's messages in order.
        params = {"url": url, "secret_token": secret_token, "max_connections": 1, "allowed_updates": allowed_updates}
        return await self.call("setWebhook", params)

    # The one HTTP path ------------------------------------------------------------------

    async def call(self, method: str, params: dict[str, Any], *, timeout_seconds: float | None = None) -> Any:
        if self._session is None:
            raise RuntimeError("BotApi.open() was not called")
        timeout = (
            aiohttp.ClientTimeout(total=timeout_seconds, sock_connect=min(self._connect_timeout, timeout_seconds))
            if timeout_seconds is not None
            else None
        )
        started = time.perf_counter()
        try:
            async with self._session.post(self._base + method, json=params, timeout=timeout) as response:
                raw = await response.read()
                status = response.status
                retry_header = response.headers.get("Retry-After", "")
        except asyncio.TimeoutError:
            self._note(started, reachable=False, detail=f"{method}: timed out")
            metrics.API_CALLS.labels(method, "timeout").inc()
            raise Unavailable(f"Telegram {method} timed out") from None
        except aiohttp.ClientError as error:
            detail = self.redact(f"{type(error).__name__}: {error}")
            self._note(started, reachable=False, detail=f"{method}: {detail}")
            metrics.API_CALLS.labels(method, "connection_error").inc()
            raise Unavailable(f"Telegram {method}: {detail}") from None
        finally:
            metrics.API_SECONDS.labels(method).observe(time.perf_counter() - started)

        body = _json_object(raw)
        if status == 200 and body.get("ok") is True:
            self._note(started, reachable=True, detail="")
            metrics.API_CALLS.labels(method, "ok").inc()
            return body.get("result")
        if "ok" not in body and 200 <= status < 300:
            body = {"error_code": 502, "description": "an answer that is not the Bot API's"}
        if retry_header.isdigit():
            body.setdefault("parameters", {"retry_after": int(retry_header)})
        error = self.failure(method, status, body)
        self._note(started, reachable=True, detail=error.message)
        raise error

    def failure(self, method: str, http_status: int, body: dict[str, Any]) -> ServiceError:
        """The runtime error for a refused call (see the module docstring)."""
        code = body.get("error_code") if isinstance(body.get("error_code"), int) else http_status
        description = self.redact(str(body.get("description") or f"HTTP {http_status}"))
        parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        message = f"Telegram {method} failed: {code} {description}"
        if code == 429:
            retry_after = parameters.get("retry_after")
            seconds = float(retry_after) if isinstance(retry_after, (int, float)) and retry_after > 0 else DEFAULT_RETRY_AFTER_SECONDS
            metrics.API_CALLS.labels(method, "throttled").inc()
            return ResourceExhausted(message, retry_after_seconds=seconds)
        if code >= 500 or http_status >= 500:
            metrics.API_CALLS.labels(method, "server_error").inc()
            return Unavailable(message)
        if code == 401:
            metrics.API_CALLS.labels(method, "unauthorized").inc()
            return Unauthenticated(f"{message} (the bot token is rejected: check C4A_TELEGRAM_BOT_TOKEN)")
        metrics.API_CALLS.labels(method, "rejected").inc()
        if "migrate_to_chat_id" in parameters:
            return FailedPrecondition(f"{message} (the group is now supergroup {parameters['migrate_to_chat_id']})")
        if code in (403, 404, 409) or "chat not found" in description.lower():
            return FailedPrecondition(message)
        return InvalidArgument(message)

    def _note(self, started: float, *, reachable: bool, detail: str) -> None:
        check = self.last_check
        check.reachable = reachable
        check.latency_seconds = time.perf_counter() - started
        check.check_time = time.time()
        check.detail = detail


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        return {}  # an HTML error page from a proxy in front of the API: the HTTP status decides
    return body if isinstance(body, dict) else {}
