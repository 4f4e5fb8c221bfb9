"""The Instagram Messaging emulator's HTTP server.

    POST /v{N}/{ig_user_id}/messages      Send API (also /v{N}/me/messages)     sending.py
    GET  /ig_messaging_cdn/?asset_id=..   injected attachments' bytes           inbound.py
    /_emulator/...                        control API (meta/control.py, inbound.py)

Any other path answers the Graph "unknown path" error.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..meta.control import ControlSpec, add_control_routes
from ..meta.graph import VERSION, GraphApi, GraphCall, graph_error_middleware
from ..meta.lifecycle import add_lifecycle
from .config import InstagramConfig
from .inbound import add_instagram_routes
from .sending import post_messages
from .state import InstagramState

STATE_KEY = web.AppKey("state", InstagramState)


def create_app(config: InstagramConfig) -> web.Application:
    state = InstagramState(config)
    api = GraphApi(state)
    app = web.Application(client_max_size=config.upload_limit_bytes + 1024 * 1024,
                          middlewares=[graph_error_middleware(api)])
    app[STATE_KEY] = state

    async def send(request: web.Request) -> web.StreamResponse:
        return await api.handle(request, lambda call: post_messages(state, call),
                                tags={"ig_user_id": request.match_info["node"]}, is_send=True)

    add_control_routes(app, state, ControlSpec(
        platform="instagram",
        account_key="ig_user_id",
        message_filters=("ig_user_id", "recipient_id", "mid", "type"),
        delivery_filters=("ig_user_id", "mid"),
        limits=state.limits,
        status_policy=state.policy,
        window_seconds=state.window_seconds,
        contact_fields=frozenset({"last_inbound_time", "available"}),
        on_reset=state.reset_extra,
    ))
    async def describe(request: web.Request) -> web.StreamResponse:
        """GET /{ig_user_id} (or /me): the account's node, what a health check reads."""
        async def account(call: GraphCall) -> dict[str, Any]:
            return {"id": state.account_for(request.match_info["node"], call.token)}
        return await api.handle(request, account, tags={"ig_user_id": request.match_info["node"]})

    add_instagram_routes(app, state)
    app.router.add_post(f"/{VERSION}/{{node}}/messages", send)
    app.router.add_get(f"/{VERSION}/{{node}}", describe)
    app.router.add_route("*", "/{tail:.*}", api.unknown)
    add_lifecycle(app, state)
    return app
