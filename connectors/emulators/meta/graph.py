"""How every Graph API call runs: read and record the request, then
`down` -> access token -> injected faults (sends only) -> the endpoint.
Errors answer in the Graph shape with the matching HTTP status; every
request's answer status is recorded.

Paths take any version prefix: `/v{N}.{M}/...` (also `/v{N}/...`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .auth import access_token
from .errors import GraphError, invalid_parameter, invalid_token, server_error, unknown_path
from .recording import request_record
from .state import MetaState
from .wire import BodyError, GraphBody, control_fail, json_response, read_graph_body

log = logging.getLogger(__name__)

VERSION = r"{version:v\d+(?:\.\d+)?}"


@dataclass
class GraphCall:
    request: web.Request
    body: GraphBody
    token: str
    record: dict[str, Any]


Endpoint = Callable[[GraphCall], Awaitable["dict[str, Any] | web.StreamResponse"]]


class GraphApi:
    def __init__(self, state: MetaState):
        self.state = state

    def error_response(self, error: GraphError) -> web.Response:
        headers: dict[str, str] = {}
        if error.retry_after:
            headers["Retry-After"] = str(error.retry_after)
        if error.http_status == 401:
            headers["WWW-Authenticate"] = f'OAuth "Facebook Platform" "invalid_token" "{error.message}"'
        return json_response(error.body(self.state.trace_id()), error.http_status, headers)

    async def handle(self, request: web.Request, endpoint: Endpoint, *, tags: dict[str, Any] | None = None,
                     is_send: bool = False) -> web.StreamResponse:
        state = self.state
        body_error: GraphError | None = None
        try:
            body = await read_graph_body(request, state.config.upload_limit_bytes)
        except BodyError as error:
            body, body_error = GraphBody(), invalid_parameter(str(error))
        record = state.requests.add(request_record(request, body, tags or {}))
        try:
            down = state.faults.down_error()
            if down is not None:
                raise down
            token = access_token(request)
            if token is None or not state.token_ok(token):
                raise invalid_token()
            if body_error is not None:
                raise body_error
            if is_send:
                decision = state.faults.decide()
                if decision.delay_s:
                    await asyncio.sleep(decision.delay_s)
                if decision.error is not None:
                    raise decision.error
            result = await endpoint(GraphCall(request, body, token, record))
        except GraphError as error:
            record["status"] = error.http_status
            record["error"] = {"code": error.code, "message": error.message, **error.error_data}
            return self.error_response(error)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            error = server_error(500)
            record["status"] = 500
            record["error"] = {"code": error.code, "message": error.message}
            return self.error_response(error)
        if isinstance(result, web.StreamResponse):
            record["status"] = result.status
            return result
        record["status"] = 200
        return json_response(result)

    async def unknown(self, request: web.Request) -> web.StreamResponse:
        """Any other path: recorded, then the Graph "unknown path" error (after auth, like Meta)."""
        if request.path.startswith("/_emulator/"):
            return control_fail(f"no control API route {request.method} {request.path}", 404)

        async def refuse(_: GraphCall) -> dict[str, Any]:
            raise unknown_path(request.path)
        return await self.handle(request, refuse)


def graph_error_middleware(api: GraphApi) -> Any:
    """aiohttp's own errors (oversized bodies and the like) in the Graph shape."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as error:
            if error.status < 400 or request.path.startswith("/_emulator/"):
                raise
            code = 1 if error.status >= 500 else 100
            return api.error_response(GraphError(error.status, code, f"(#{code}) {error.reason}"))

    return middleware
