"""Pushes a bot's pending updates to its webhook, as the real platform does.

One update at a time per bot, in queue (update_id) order: the body is the
Update object as JSON, with `X-Telegram-Bot-Api-Secret-Token` when a secret
was set. A 2xx answer confirms the update; anything else (or a connection
error) keeps it at the head of the queue and retries it: at once, then with
exponential backoff, or after the webhook's own Retry-After. After
`max_attempts` failures the update is dropped. The last error is shown by
getWebhookInfo. A 2xx answer whose JSON body names a Bot API `method` is
executed, like the real platform's "reply to the webhook".
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from .state import Bot, EmulatorState, Webhook

log = logging.getLogger(__name__)

ReplyHandler = Callable[[Bot, dict[str, Any]], Awaitable[None]]

# A webhook reply may not call these (real platform rule).
_NOT_FROM_WEBHOOK = ("deletewebhook", "setwebhook", "close", "logout")
_MAX_REPLY_BYTES = 1024 * 1024


class WebhookSender:
    def __init__(self, state: EmulatorState, on_reply: ReplyHandler):
        self._state = state
        self._on_reply = on_reply
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                trust_env=False,
                auto_decompress=True,
            )
        return self._session

    async def close(self) -> None:
        for bot in self._state.bots.values():
            if bot.webhook_task is not None:
                bot.webhook_task.cancel()
        if self._session is not None:
            await self._session.close()

    def restart(self, bot: Bot) -> None:
        """(Re)start delivery after the bot's webhook changed; stops it when there is none."""
        if bot.webhook_task is not None:
            bot.webhook_task.cancel()
            bot.webhook_task = None
        if bot.webhook is not None:
            bot.webhook_task = asyncio.create_task(self._deliver(bot, bot.webhook), name=f"webhook {bot.id}")

    async def _deliver(self, bot: Bot, webhook: Webhook) -> None:
        attempt = 0
        while True:
            if not bot.queue:
                await bot.queue_changed()
                continue
            update = bot.queue[0]
            attempt += 1
            started = time.time()
            status, error, retry_after, reply = await self._post(webhook, update)
            bot.webhook_deliveries.append({
                "update_id": update["update_id"],
                "attempt": attempt,
                "status": status,
                "error": error,
                "at": started,
                "duration_ms": round((time.time() - started) * 1000, 3),
            })
            if error is None:
                if bot.queue and bot.queue[0] is update:
                    bot.queue.popleft()
                attempt = 0
                if reply is not None:
                    await self._run_reply(bot, reply)
                continue
            bot.last_webhook_error_date = int(time.time())
            bot.last_webhook_error_message = error
            policy = self._state.webhook_policy
            if attempt >= policy.max_attempts:
                log.warning("dropping update %s after %d failed webhook deliveries: %s",
                            update["update_id"], attempt, error)
                if bot.queue and bot.queue[0] is update:
                    bot.queue.popleft()
                attempt = 0
                continue
            if retry_after:
                delay = float(retry_after)
            elif attempt == 1:
                delay = 0.0
            else:
                delay = min(policy.initial_backoff_s * 2 ** (attempt - 2), policy.max_backoff_s)
            await asyncio.sleep(delay)

    async def _post(self, webhook: Webhook, update: dict[str, Any]) -> tuple[int | None, str | None, int, Any]:
        """(status, error or None, retry_after, parsed reply) of one delivery."""
        headers = {"Content-Type": "application/json"}
        if webhook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = webhook.secret_token
        body = json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode()
        timeout = aiohttp.ClientTimeout(total=self._state.webhook_policy.timeout_s)
        try:
            async with self.session().post(
                webhook.url, data=body, headers=headers, timeout=timeout, allow_redirects=False,
            ) as response:
                if 200 <= response.status <= 299:
                    reply = None
                    if response.content_type == "application/json":
                        raw = await response.content.read(_MAX_REPLY_BYTES)
                        try:
                            reply = json.loads(raw) if raw.strip() else None
                        except ValueError:
                            reply = None
                    return response.status, None, 0, reply
                retry_after = response.headers.get("Retry-After", "")
                return (
                    response.status,
                    f"Wrong response from the webhook: {response.status} {response.reason or ''}".rstrip(),
                    int(retry_after) if retry_after.isdigit() else 0,
                    None,
                )
        except asyncio.TimeoutError:
            return None, "Read timeout expired", 0, None
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, ConnectionRefusedError):
                return None, "Connection refused", 0, None
            return None, "Can't connect to the webhook", 0, None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError):
            return None, "Webhook connection closed", 0, None
        except aiohttp.ClientError as error:
            return None, f"Wrong response from the webhook: {error}", 0, None

    async def _run_reply(self, bot: Bot, reply: Any) -> None:
        if not isinstance(reply, dict):
            return
        method = reply.get("method")
        if not isinstance(method, str) or not method:
            return
        lowered = method.lower()
        if lowered in _NOT_FROM_WEBHOOK or lowered.startswith("get"):
            return
        try:
            await self._on_reply(bot, reply)
        except Exception:  # a bad reply must not stop deliveries
            log.exception("webhook reply %s failed", method)
