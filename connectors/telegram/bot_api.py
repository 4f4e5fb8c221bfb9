"""The Telegram Bot API, called through the SDK's pooled HTTP client.

Every call goes to `{api_url}/bot<token>/<method>` with a JSON body (multipart/form-data
when it carries a file), and every answer is `{"ok":true,"result":..}` or
`{"ok":false,"error_code":N,"description":..}`.
Failures become the runtime's errors, which are MessageConnector's error contract:

  429 (with parameters.retry_after)      RESOURCE_EXHAUSTED + that retry-after (PlatformThrottled:
                                         every replica then holds the bot's send limit that long)
  5xx, timeout, connection error         UNAVAILABLE (transient; counts for the circuit breaker)
  401 (the token is rejected)            UNAUTHENTICATED (the contract's code for
                                         rejected credentials; permanent: an operator fixes it)
  403 (blocked by the user, not a        FAILED_PRECONDITION (permanent in this state)
       member), 400 "chat not found"
       (never started the bot), 400 after
       a group became a supergroup, 404, 409
  other 4xx (e.g. a URL Telegram could   INVALID_ARGUMENT (this message is rejected as such)
       not fetch, a photo it cannot use)

The token is part of every URL: PlatformHttp redacts it from the texts it makes,
and descriptions from the answer pass through the same `redact`.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from connectors.sdk.http import HttpAnswer, PlatformHttp
from connectors.sdk.platform import PlatformThrottled
from services.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ServiceError,
    Unauthenticated,
    Unavailable,
)

# Telegram omits retry_after only in odd cases; one second is its usual smallest answer.
DEFAULT_RETRY_AFTER_SECONDS = 1.0
# Telegram does not say which of its limits a 429 is about: the servicer then holds the
# first bucket of the send, the bot's.
THROTTLE_SCOPE = ""


class BotApi:
    def __init__(self, http: PlatformHttp, api_url: str, token: str, *, timeout_seconds: float) -> None:
        self.http = http
        self._base = f"{api_url.rstrip('/')}/bot{token}/"
        self._files = f"{api_url.rstrip('/')}/file/bot{token}/"
        # getUpdates waits this much longer than its long poll (the usual round trip).
        self._timeout_seconds = timeout_seconds

    # Methods ------------------------------------------------------------------------

    async def send_message(self, chat_id: int | str, text: str) -> dict[str, Any]:
        return await self.call("sendMessage", {"chat_id": chat_id, "text": text})

    async def get_me(self, timeout_seconds: float | None = None) -> dict[str, Any]:
        return await self.call("getMe", {}, timeout_seconds=timeout_seconds)

    async def get_updates(self, offset: int | None, timeout_seconds: int, allowed_updates: list[str]) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"timeout": timeout_seconds, "allowed_updates": allowed_updates}
        if offset is not None:
            params["offset"] = offset
        return await self.call("getUpdates", params, timeout_seconds=timeout_seconds + self._timeout_seconds)

    async def get_file(self, file_id: str) -> dict[str, Any]:
        """The File of a file_id: file_path (downloadable for at least an hour), file_size."""
        result = await self.call("getFile", {"file_id": file_id})
        return result if isinstance(result, dict) else {}

    def file_url(self, file_path: str) -> str:
        """Where a getFile's file_path is downloaded. It holds the token: log it only redacted."""
        return self._files + file_path

    async def set_webhook(self, url: str, secret_token: str, allowed_updates: list[str]) -> bool:
        # One connection: Telegram then delivers one update at a time, in update_id order, and
        # retries a failed one before the next, which is what keeps a chat's messages in order.
        params = {"url": url, "secret_token": secret_token, "max_connections": 1, "allowed_updates": allowed_updates}
        return await self.call("setWebhook", params)

    # The one HTTP path ------------------------------------------------------------------

    async def call(self, method: str, params: dict[str, Any], *, timeout_seconds: float | None = None) -> Any:
        answer = await self.http.request(method, "POST", self._base + method, json_body=params, timeout_seconds=timeout_seconds)
        return self.result(method, answer)

    async def upload(self, method: str, form: aiohttp.MultipartWriter, *, timeout_seconds: float) -> Any:
        """A method whose file goes in the request (multipart/form-data), e.g. sendDocument."""
        answer = await self.http.request(method, "POST", self._base + method, data=form, timeout_seconds=timeout_seconds)
        return self.result(method, answer)

    def result(self, method: str, answer: HttpAnswer) -> Any:
        body = answer.json_object()
        if answer.status == 200 and body.get("ok") is True:
            return body.get("result")
        raise self.failure(method, answer, body)

    def failure(self, method: str, answer: HttpAnswer, body: dict[str, Any]) -> ServiceError:
        """The runtime error for a refused call (see the module docstring)."""
        http_status = answer.status
        if "ok" not in body and 200 <= http_status < 300:
            body = {"error_code": 502, "description": "an answer that is not the Bot API's"}
        code = body.get("error_code") if isinstance(body.get("error_code"), int) else http_status
        description = self.http.redact(str(body.get("description") or f"HTTP {http_status}"))
        parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        message = f"Telegram {method} failed: {code} {description}"
        if code == 429:
            retry_after = parameters.get("retry_after")
            if not isinstance(retry_after, (int, float)) or retry_after <= 0:
                retry_after = answer.retry_after_header() or DEFAULT_RETRY_AFTER_SECONDS
            return PlatformThrottled(message, retry_after_seconds=float(retry_after), scope=THROTTLE_SCOPE)
        if code >= 500 or http_status >= 500:
            return Unavailable(message)
        if code == 401:
            return Unauthenticated(f"{message} (the bot token is rejected: check C4A_TELEGRAM_BOT_TOKEN)")
        if "migrate_to_chat_id" in parameters:
            return FailedPrecondition(f"{message} (the group is now supergroup {parameters['migrate_to_chat_id']})")
        if code in (403, 404, 409) or "chat not found" in description.lower():
            return FailedPrecondition(message)
        return InvalidArgument(message)
