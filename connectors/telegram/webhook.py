"""Webhook mode: Telegram POSTs each update to our own HTTP server.

The only proof a request comes from Telegram is the secret token it echoes in
X-Telegram-Bot-Api-Secret-Token (Telegram signs nothing): anything else gets
401 and is neither stored nor published. An update is answered 200 only after
Kafka acknowledged it (or it was a duplicate or ignored); a failure answers 500,
and Telegram delivers the same update again.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging

from aiohttp import web

from connectors.telegram import metrics
from connectors.telegram.updates import BUSY, InboundUpdates

log = logging.getLogger("chat4all.telegram.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# An update another request is handling right now (a redelivery racing the first try):
# wait this long for it to finish before asking Telegram to come back.
_BUSY_WAIT_SECONDS = 5.0


class WebhookServer:
    def __init__(self, host: str, port: int, path: str, secret: str, inbound: InboundUpdates) -> None:
        self.host, self.port, self.path = host, port, path
        self._secret = secret.encode()
        self._inbound = inbound
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(self.path, self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("webhook listening", extra={"webhook_port": self.port, "webhook_path": self.path})
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            metrics.INBOUND_UPDATES.labels("webhook", "unauthorized").inc()
            log.warning("webhook request without the right secret token", extra={"remote": request.remote})
            return web.Response(status=401, text="unauthorized")
        try:
            update = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400, text="the body is not JSON")
        if not isinstance(update, dict):
            return web.Response(status=400, text="the body is not an Update object")

        loop = asyncio.get_running_loop()
        deadline = loop.time() + _BUSY_WAIT_SECONDS
        try:
            while (outcome := await self._inbound.handle(update, "webhook")) == BUSY and loop.time() < deadline:
                await asyncio.sleep(0.1)
        except Exception:
            return web.Response(status=500, text="not stored; deliver it again")
        if outcome == BUSY:
            return web.Response(status=503, headers={"Retry-After": "1"}, text="being handled; deliver it again")
        return web.Response(status=200)
