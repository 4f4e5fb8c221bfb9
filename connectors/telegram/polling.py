"""Polling mode: a getUpdates long-poll loop.

Telegram allows one getUpdates at a time per bot, so among replicas only the
holder of a Redis lease polls (the others wait to take over). The offset is
the last handled update_id + 1, kept in Redis after each update: a restart
(or another replica taking over) resumes exactly there, so nothing is lost
or repeated, and passing it to getUpdates confirms the handled updates to
Telegram. After a week without updates Telegram starts its ids again from a
random number, so the stored offset expires before that: an offset above the
new ids would confirm (drop) them unseen.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import redis.asyncio as redis

from connectors.sdk.inbound import BUSY
from connectors.telegram.bot_api import BotApi
from connectors.telegram.settings import TelegramSettings
from connectors.telegram.updates import ALLOWED_UPDATES, TelegramUpdates, update_id_of
from services.runtime.errors import ResourceExhausted, ServiceError

log = logging.getLogger("chat4all.telegram.polling")

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_FOLLOWER_WAIT_SECONDS = 5.0
_OFFSET_TTL_SECONDS = 6 * 24 * 3600


class Poller:
    def __init__(
        self, settings: TelegramSettings, api: BotApi, client: redis.Redis, prefix: str, updates: TelegramUpdates
    ) -> None:
        """`prefix` is the connector's account prefix (`<redis prefix>:{<bot id>}`)."""
        self.api = api
        self.updates = updates
        self._redis = client
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._offset_key = f"{prefix}:last_update_id"
        self._lease_key = f"{prefix}:poller"
        self._lease_token = secrets.token_hex(8)
        self._poll_timeout = settings.telegram_poll_timeout_seconds
        # The lease outlives one long poll plus handling its batch.
        self._lease_ms = int((settings.telegram_poll_timeout_seconds + settings.connector_http_timeout_seconds + 15) * 1000)
        self._backoff_max = settings.telegram_poll_backoff_max_seconds
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="telegram-poller")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        # A cancellation can be swallowed on Python 3.11 (asyncio.wait_for inside redis-py
        # returns a result that raced the cancel), so cancel until the task has ended.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=1.0)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("the poller had stopped with an error", exc_info=task.exception())
        try:
            await self._release(keys=[self._lease_key], args=[self._lease_token])
        except Exception:  # it expires by itself
            log.warning("could not release the polling lease")

    async def _lead(self) -> bool:
        if await self._renew(keys=[self._lease_key], args=[self._lease_token, self._lease_ms]):
            return True
        return bool(await self._redis.set(self._lease_key, self._lease_token, nx=True, px=self._lease_ms))

    async def _run(self) -> None:
        backoff = 1.0
        leading = False
        while not self._stopping:
            try:
                if not await self._lead():
                    if leading:
                        log.warning("lost the polling lease to another replica")
                    leading = False
                    await asyncio.sleep(_FOLLOWER_WAIT_SECONDS)
                    continue
                if not leading:
                    log.info("polling for updates")
                    leading = True
                stored = await self._redis.get(self._offset_key)
                offset = int(stored) + 1 if stored is not None else None
                updates = await self.api.get_updates(offset, self._poll_timeout, ALLOWED_UPDATES)
                await self._handle(updates)
                backoff = 1.0
            except ResourceExhausted as error:
                log.warning("getUpdates throttled: %s", error.message)
                await asyncio.sleep(error.retry_after_seconds or backoff)
            except ServiceError as error:
                # 409: a webhook is set, or another process polls this bot outside our lease.
                log.warning("getUpdates failed; retrying in %.1fs: %s", backoff, error.message)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max)
            except Exception as error:
                log.warning("handling updates failed; retrying in %.1fs: %r", backoff, error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max)

    async def _handle(self, updates: list[dict[str, Any]]) -> None:
        """In update_id order; the offset moves past each update once it is handled. An update
        whose media are imported takes seconds, so a batch can outlast the lease: it is renewed
        after each update, and the batch stops if another replica took it meanwhile."""
        for update in sorted(updates, key=_order):
            update_id = update_id_of(update)
            if await self.updates.publish_once(update) == BUSY:
                raise RuntimeError(f"update {update_id} is being handled elsewhere")
            if update_id is not None and update_id >= 0:
                await self._redis.set(self._offset_key, update_id, ex=_OFFSET_TTL_SECONDS)
            if not await self._renew(keys=[self._lease_key], args=[self._lease_token, self._lease_ms]):
                raise RuntimeError("the polling lease was lost while handling a batch")


def _order(update: dict[str, Any]) -> int:
    update_id = update_id_of(update)
    return -1 if update_id is None else update_id
