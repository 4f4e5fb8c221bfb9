"""Webhook mode: Telegram POSTs each update to the connector's webhook server.

The only proof a request comes from Telegram is the secret token it echoes in
X-Telegram-Bot-Api-Secret-Token (Telegram signs nothing): anything else gets
401 and is neither stored nor published. An update is answered 200 only after
Kafka acknowledged it (or it was a duplicate or ignored); a failure answers 500,
and Telegram delivers the same update again; one still being handled by another
request after a short wait answers 503 with Retry-After.
"""

from __future__ import annotations

import hmac
import json
import logging

from aiohttp import web

from connectors.sdk import metrics
from connectors.sdk.inbound import BUSY
from connectors.telegram.updates import TelegramUpdates

log = logging.getLogger("chat4all.telegram.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramWebhook:
    def __init__(self, secret: str, updates: TelegramUpdates) -> None:
        self._secret = secret.encode()
        self._updates = updates

    async def receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            metrics.INBOUND.labels("telegram", "webhook", "unauthorized").inc()
            log.warning("webhook request without the right secret token", extra={"remote": request.remote})
            return web.Response(status=401, text="unauthorized")
        try:
            update = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400, text="the body is not JSON")
        if not isinstance(update, dict):
            return web.Response(status=400, text="the body is not an Update object")
        try:
            outcome = await self._updates.publish_waiting(update)
        except Exception:  # logged by the publisher
            return web.Response(status=500, text="not stored; deliver it again")
        if outcome == BUSY:
            return web.Response(status=503, headers={"Retry-After": "1"}, text="being handled; deliver it again")
        return web.Response(status=200)
