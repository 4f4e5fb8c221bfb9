"""The connector's own HTTP server for platform webhooks (aiohttp, on the event loop).

Each connector adds its routes; the server bounds body sizes (platform events
are small; media come by reference) and logs no bodies.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger("chat4all.connector.webhooks")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebhookServer:
    def __init__(self, host: str, port: int, *, max_body_bytes: int = 1024 * 1024) -> None:
        self.host, self.port = host, port
        self._app = web.Application(client_max_size=max_body_bytes)
        self._runner: web.AppRunner | None = None

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        self._app.router.add_route(method, path, handler)

    async def start(self) -> int:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        paths = sorted({route.resource.canonical for route in self._app.router.routes() if route.resource})
        log.info("webhook listening", extra={"webhook_port": self.port, "webhook_paths": paths})
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
