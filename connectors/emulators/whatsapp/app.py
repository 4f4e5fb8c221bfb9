"""The WhatsApp Cloud API emulator's HTTP server.

    POST   /v{N}/{phone_number_id}/messages      send (and mark-as-read)        sending.py
    POST   /v{N}/{phone_number_id}/media         upload                         media_api.py
    GET    /v{N}/{media_id}                      media info; DELETE deletes
    GET    /whatsapp_business/attachments/?...   media download (bearer token)
    /_emulator/...                               control API (meta/control.py, control.py)

Any other path answers the Graph "unknown path" error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..meta.control import ControlSpec, add_control_routes
from ..meta.graph import VERSION, GraphApi, GraphCall, graph_error_middleware
from ..meta.lifecycle import add_lifecycle
from . import media_api
from .config import WhatsAppConfig
from .control import add_whatsapp_routes
from .sending import post_messages
from .state import WhatsAppState

STATE_KEY = web.AppKey("state", WhatsAppState)

Endpoint = Callable[[WhatsAppState, GraphCall], Awaitable[Any]]


def create_app(config: WhatsAppConfig) -> web.Application:
    state = WhatsAppState(config)
    api = GraphApi(state)
    app = web.Application(client_max_size=config.upload_limit_bytes + 1024 * 1024,
                          middlewares=[graph_error_middleware(api)])
    app[STATE_KEY] = state

    def route(endpoint: Endpoint, tag: str | None, is_send: bool = False) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            tags = {tag: request.match_info["node"]} if tag else {}
            return await api.handle(request, lambda call: endpoint(state, call), tags=tags, is_send=is_send)
        return handler

    async def download(request: web.Request) -> web.StreamResponse:
        tags = {"media_id": request.query.get("mid")}
        return await api.handle(request, lambda call: media_api.download(state, call), tags=tags)

    add_control_routes(app, state, ControlSpec(
        platform="whatsapp",
        account_key="phone_number_id",
        message_filters=("phone_number_id", "to", "recipient", "wamid", "type", "outcome"),
        delivery_filters=("phone_number_id", "wamid", "status"),
        limits=state.limits,
        status_policy=state.status_policy,
        window_seconds=state.window_seconds,
        contact_fields=frozenset({"last_inbound_time"}),
        on_reset=state.reset_extra,
    ))
    add_whatsapp_routes(app, state)
    router = app.router
    router.add_post(f"/{VERSION}/{{node}}/messages", route(post_messages, "phone_number_id", is_send=True))
    router.add_post(f"/{VERSION}/{{node}}/media", route(media_api.upload, "phone_number_id"))
    router.add_get(f"/{VERSION}/{{node}}", route(media_api.describe, "media_id"))
    router.add_delete(f"/{VERSION}/{{node}}", route(media_api.delete, "media_id"))
    router.add_get(media_api.DOWNLOAD_PATH, download)
    router.add_route("*", "/{tail:.*}", api.unknown)
    add_lifecycle(app, state)
    return app
