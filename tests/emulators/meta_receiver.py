"""A webhook receiver for the Meta emulators' tests, run in the test process:
answers Meta's subscription handshake, checks `X-Hub-Signature-256` over the
raw bytes with hmac, can fail deliveries on purpose, and serves files for the
emulators to fetch by URL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.ports import free_port


@dataclass
class Delivery:
    raw: bytes
    headers: dict[str, str]
    signature_ok: bool

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class MetaWebhookReceiver:
    def __init__(self, app_secret: str, verify_token: str):
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.deliveries: list[Delivery] = []
        self.handshakes: list[dict[str, str]] = []
        # Answer the next N deliveries with 500.
        self.fail_next = 0
        # Answer the handshake with this instead of the challenge.
        self.wrong_challenge: str | None = None
        # Files served at /files/{name}: (bytes, content type).
        self.files: dict[str, tuple[bytes, str]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def file_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/files/{name}"

    async def _handshake(self, request: web.Request) -> web.Response:
        self.handshakes.append(dict(request.query))
        if request.query.get("hub.mode") != "subscribe" or request.query.get("hub.verify_token") != self.verify_token:
            return web.Response(status=403, text="wrong verify token")
        return web.Response(text=self.wrong_challenge or request.query["hub.challenge"])

    async def _post(self, request: web.Request) -> web.Response:
        raw = await request.read()
        expected = "sha256=" + hmac.new(self.app_secret.encode(), raw, hashlib.sha256).hexdigest()
        header = request.headers.get("X-Hub-Signature-256", "")
        self.deliveries.append(Delivery(raw, dict(request.headers), hmac.compare_digest(expected, header)))
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=500, text="try again")
        return web.Response(text="EVENT_RECEIVED")

    async def _file(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404, text="no such file")
        data, content_type = found
        return web.Response(body=data, headers={"Content-Type": content_type})

    async def start(self) -> MetaWebhookReceiver:
        app = web.Application()
        app.router.add_get("/webhook", self._handshake)
        app.router.add_post("/webhook", self._post)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """The first `count` deliveries, once they have all arrived."""
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} webhook deliveries, got {len(self.deliveries)}: "
                                     f"{[d.raw[:300] for d in self.deliveries]}")
            await asyncio.sleep(0.01)
        return self.deliveries[:count]

    async def quiet(self, seconds: float = 0.3) -> int:
        """Wait a moment and say how many deliveries there are (to assert nothing more came)."""
        await asyncio.sleep(seconds)
        return len(self.deliveries)
