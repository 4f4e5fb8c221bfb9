"""The emulator's HTTP server: the Bot API, file downloads and the control API.

    /bot<token>/<method>             Bot API (GET or POST; query, JSON, form or multipart)
    /file/bot<token>/<file_path>     file download (getFile gives the path)
    /_emulator/...                   control API for tests (see control.py)

Every Bot API request is recorded with its parameters and answer status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import web

from . import control
from .config import DOWNLOAD_LIMIT_BYTES, UPLOAD_LIMIT_BYTES, EmulatorConfig
from .methods import METHODS, Answer, Call
from .params import BotApiError, Params, bad_request, not_found, read_params, recorded_params, unauthorized
from .state import Bot, EmulatorState
from .webhook import WebhookSender

log = logging.getLogger(__name__)

STATE_KEY = web.AppKey("state", EmulatorState)
WEBHOOKS_KEY = web.AppKey("webhooks", WebhookSender)

_DROPPED = object()


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def bot_api_response(payload: dict[str, Any], status: int = 200, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return web.Response(body=dumps(payload), status=status, content_type="application/json", headers=headers)


def error_response(error: BotApiError) -> web.Response:
    return bot_api_response(error.body(), error.code, error.retry_after)


class BotApi:
    """Runs Bot API calls: recording, auth, faults, the method itself."""

    def __init__(self, state: EmulatorState, webhooks: WebhookSender):
        self.state = state
        self.webhooks = webhooks

    async def execute(self, token: str, method_name: str, params: Params, *, http_method: str,
                      received_at: float, via: str = "http") -> tuple[int, dict[str, Any], int | None] | object:
        """(status, body, retry_after) of a call, or _DROPPED when the connection must close unanswered."""
        state = self.state
        method = METHODS.get(method_name.lower())
        record = state.record_request(method.name if method else method_name, token, http_method,
                                      recorded_params(params), received_at, via)
        bot = state.bot(token)
        drop_after_send = False
        try:
            if bot is None:
                raise unauthorized()
            if method is None:
                raise not_found()
            if method.is_send:
                decision = state.faults.decide()
                if decision.delay_s:
                    await asyncio.sleep(decision.delay_s)
                if decision.drop:
                    record.dropped = True
                    return _DROPPED
                if decision.error is not None:
                    raise decision.error
                drop_after_send = decision.drop_after_send
            call = Call(state, bot, params, method.name, self.webhooks.session, self.webhooks.restart)
            value = await method.handler(call)
        except BotApiError as error:
            record.status = error.code
            record.description = error.description
            return error.code, error.body(), error.retry_after
        except Exception:
            log.exception("%s failed", method_name)
            record.status = 500
            record.description = "Internal Server Error"
            return 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}, None
        record.status = 200
        if drop_after_send:
            record.dropped = True
            return _DROPPED
        if isinstance(value, Answer):
            body: dict[str, Any] = {"ok": True, "result": value.result}
            if value.description:
                body["description"] = value.description
            return 200, body, None
        return 200, {"ok": True, "result": value}, None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        received_at = time.time()
        token = request.match_info["token"]
        method_name = request.match_info.get("method", "")
        try:
            params = await read_params(request)
        except BotApiError as error:
            record = self.state.record_request(method_name, token, request.method, dict(request.query), received_at)
            record.status = error.code
            record.description = error.description
            return error_response(error)
        if not method_name:
            method_name = params.str("method")
        outcome = await self.execute(token, method_name, params, http_method=request.method, received_at=received_at)
        if outcome is _DROPPED:
            transport = request.transport
            if transport is not None:
                transport.abort()
            return web.Response(status=500)  # never reaches the client
        status, body, retry_after = outcome  # type: ignore[misc]
        return bot_api_response(body, status, retry_after)

    async def webhook_reply(self, bot: Bot, reply: dict[str, Any]) -> None:
        """A method call in a webhook's answer, run as if the bot had called it."""
        params = Params({key: value for key, value in reply.items() if key != "method"})
        await self.execute(bot.token, str(reply["method"]), params, http_method="WEBHOOK-REPLY",
                           received_at=time.time(), via="webhook_reply")

    async def download(self, request: web.Request) -> web.StreamResponse:
        bot = self.state.bot(request.match_info["token"])
        if bot is None:
            return error_response(unauthorized())
        stored = bot.files.by_path.get(request.match_info["file_path"])
        if stored is None or stored.data is None:
            return error_response(not_found())
        if len(stored.data) > DOWNLOAD_LIMIT_BYTES:
            return error_response(bad_request("file is too big"))
        return web.Response(body=stored.data, content_type="application/octet-stream")


async def _not_found(request: web.Request) -> web.StreamResponse:
    return error_response(not_found())


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """aiohttp's own errors (405, oversized bodies...) in the Bot API error shape."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400 or request.path.startswith("/_emulator/"):
            raise
        description = {404: "Not Found", 405: "Method Not Allowed", 413: "Request Entity Too Large"}.get(
            error.status, error.reason)
        return bot_api_response({"ok": False, "error_code": error.status, "description": description}, error.status)


def create_app(config: EmulatorConfig) -> web.Application:
    # Bodies are read in full only for JSON and forms; multipart uploads stream.
    app = web.Application(client_max_size=UPLOAD_LIMIT_BYTES + 1024 * 1024, middlewares=[_json_errors])
    state = EmulatorState(config)
    webhooks = WebhookSender(state, lambda bot, reply: api.webhook_reply(bot, reply))
    api = BotApi(state, webhooks)
    app[STATE_KEY] = state
    app[WEBHOOKS_KEY] = webhooks

    control.add_routes(app, state)
    app.router.add_route("GET", "/file/bot{token}/{file_path:.+}", api.download)
    for verb in ("GET", "POST"):
        app.router.add_route(verb, "/bot{token}/{method}", api.handle)
        app.router.add_route(verb, "/bot{token}/", api.handle)
    app.router.add_route("*", "/{tail:.*}", _not_found)

    async def shutdown(_: web.Application) -> None:
        # Long polls answer at once, so the server stops without waiting them out.
        for bot in state.bots.values():
            if bot.long_poll is not None:
                bot.long_poll.wake("shutdown")
        await webhooks.close()

    app.on_shutdown.append(shutdown)
    return app
