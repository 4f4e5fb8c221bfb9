"""A client's webhook endpoint for tests: a real aiohttp server on loopback that records every
request it gets and answers each path as the test scripts it (fail the first N, always fail)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDictProxy


@dataclass(frozen=True)
class Received:
    path: str
    headers: CIMultiDictProxy
    body: bytes
    status: int  # what we answered
    at: float  # time.monotonic() on arrival

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


def fail_first(count: int, status: int = 500) -> Callable[[int], int]:
    return lambda n: status if n < count else 200


def always(status: int) -> Callable[[int], int]:
    return lambda n: status


class WebhookReceiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._plans: dict[str, Callable[[int], int]] = {}
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Event()
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def answer(self, name: str, plan: Callable[[int], int]) -> None:
        """How to answer the requests to /name: plan(n) is the status of the n-th (from 0)."""
        self._plans[name] = plan

    def to(self, name: str) -> list[Received]:
        return [r for r in self.requests if r.path == f"/{name}"]

    def accepted(self, name: str) -> list[Received]:
        return [r for r in self.to(name) if r.accepted]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0, what: str = "requests") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out waiting for {what}; got {[(r.path, r.status) for r in self.requests]}"
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        status = self._plans.get(name, lambda n: 200)(len(self.to(name)))
        self.requests.append(Received(request.path, request.headers, body, status, time.monotonic()))
        self._arrived.set()
        return web.Response(status=status, text="ok" if status < 300 else f"receiver says no ({status})")
