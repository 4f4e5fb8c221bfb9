"""The control API routes both Meta emulators share (JSON; tests drive the
emulator and look inside it with these). Each answers {"ok": true, ...} or
{"ok": false, "error": "..."} with 400/404.

    GET    /_emulator/health
    POST   /_emulator/reset                      {"subscription": true} also drops the subscription
    GET    /_emulator/requests?path=&<account>=&method=&status=&since_seq=&limit=     DELETE clears
    GET    /_emulator/messages?<platform filters>&since_seq=&limit=                   DELETE clears
    GET    /_emulator/webhook-deliveries?kind=&<platform filters>&since_seq=&limit=   DELETE clears
    GET|PUT|PATCH|DELETE /_emulator/faults | limits | status-policy | webhook-policy
    GET|PUT|DELETE       /_emulator/subscription   PUT {"callback_url", "verify_token"} runs the handshake
    GET|PUT              /_emulator/contacts/{account}/{user}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .faults import parse_fault_config
from .recording import RecordLog
from .settings import Settings
from .state import MetaState
from .wire import control_fail, control_json, read_control_json


@dataclasses.dataclass
class ControlSpec:
    platform: str
    account_key: str  # "phone_number_id" or "ig_user_id"
    message_filters: tuple[str, ...]
    delivery_filters: tuple[str, ...]
    limits: Settings[Any]
    status_policy: Settings[Any]
    window_seconds: Callable[[], float]
    contact_fields: frozenset[str]
    on_reset: Callable[[], None]


def _listing(log: RecordLog, request: web.Request, keys: tuple[str, ...], name: str) -> web.Response:
    try:
        found = log.filter(request.query, keys)
    except ValueError:
        return control_fail("since_seq and limit must be integers")
    return control_json({"ok": True, "count": len(found), name: found})


def _settings_routes(routes: web.RouteTableDef, path: str, name: str, settings: Settings[Any]) -> None:
    async def get(_: web.Request) -> web.Response:
        return control_json({"ok": True, name: settings.snapshot()})

    async def change(request: web.Request) -> web.Response:
        body = await read_control_json(request)
        try:
            settings.update(body, replace=request.method == "PUT")
        except (ValueError, TypeError) as error:
            return control_fail(str(error))
        return control_json({"ok": True, name: settings.snapshot()})

    async def restore(_: web.Request) -> web.Response:
        settings.reset()
        return control_json({"ok": True, name: settings.snapshot()})

    routes.get(path)(get)
    routes.put(path)(change)
    routes.patch(path)(change)
    routes.delete(path)(restore)


def add_control_routes(app: web.Application, state: MetaState, spec: ControlSpec) -> None:
    routes = web.RouteTableDef()
    webhooks = state.webhooks

    @routes.get("/_emulator/health")
    async def health(_: web.Request) -> web.Response:
        return control_json({"ok": True, "platform": spec.platform, "requests": len(state.requests),
                             "messages": len(state.messages), "pending_webhooks": webhooks.pending(),
                             "subscribed": webhooks.subscription is not None})

    @routes.post("/_emulator/reset")
    async def reset(request: web.Request) -> web.Response:
        body = await read_control_json(request)
        drop = isinstance(body, dict) and body.get("subscription") is True
        state.reset(keep_subscription=not drop)
        spec.limits.reset()
        spec.status_policy.reset()
        spec.on_reset()
        return control_json({"ok": True, "subscribed": webhooks.subscription is not None})

    @routes.get("/_emulator/requests")
    async def list_requests(request: web.Request) -> web.Response:
        return _listing(state.requests, request, (spec.account_key, "method", "status"), "requests")

    @routes.get("/_emulator/messages")
    async def list_messages(request: web.Request) -> web.Response:
        return _listing(state.messages, request, spec.message_filters, "messages")

    @routes.get("/_emulator/webhook-deliveries")
    async def list_deliveries(request: web.Request) -> web.Response:
        return _listing(webhooks.deliveries, request, ("kind", *spec.delivery_filters), "deliveries")

    for path, log in (("requests", state.requests), ("messages", state.messages),
                      ("webhook-deliveries", webhooks.deliveries)):
        async def clear(_: web.Request, log: RecordLog = log) -> web.Response:
            log.clear()
            return control_json({"ok": True})
        routes.delete(f"/_emulator/{path}")(clear)

    @routes.get("/_emulator/faults")
    async def get_faults(_: web.Request) -> web.Response:
        return control_json({"ok": True, "faults": state.faults.snapshot()})

    @routes.put("/_emulator/faults")
    @routes.patch("/_emulator/faults")
    async def set_faults(request: web.Request) -> web.Response:
        body = await read_control_json(request)
        try:
            config = parse_fault_config(body, None if request.method == "PUT" else state.faults.config)
        except (ValueError, TypeError) as error:
            return control_fail(str(error))
        state.faults.configure(config)
        return control_json({"ok": True, "faults": state.faults.snapshot()})

    @routes.delete("/_emulator/faults")
    async def reset_faults(_: web.Request) -> web.Response:
        state.faults.reset()
        return control_json({"ok": True, "faults": state.faults.snapshot()})

    _settings_routes(routes, "/_emulator/limits", "limits", spec.limits)
    _settings_routes(routes, "/_emulator/status-policy", "status_policy", spec.status_policy)
    _settings_routes(routes, "/_emulator/webhook-policy", "webhook_policy", state.webhook_policy)

    @routes.get("/_emulator/subscription")
    async def get_subscription(_: web.Request) -> web.Response:
        return control_json({"ok": True, "subscription": webhooks.subscription_info(),
                             "last_handshake": webhooks.last_handshake})

    @routes.put("/_emulator/subscription")
    async def subscribe(request: web.Request) -> web.Response:
        body = await read_control_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("callback_url"), str):
            return control_fail('give {"callback_url": "http://127.0.0.1:PORT/path", "verify_token": "..."}')
        verify_token = body.get("verify_token", state.config.verify_token)
        if not isinstance(verify_token, str) or not verify_token:
            return control_fail("verify_token must be a non-empty string")
        result = await webhooks.subscribe(body["callback_url"], verify_token)
        if not result["ok"]:
            return control_fail(f"subscription refused: {result['error']}", handshake=result,
                                subscription=webhooks.subscription_info())
        return control_json({"ok": True, "subscription": webhooks.subscription_info(), "handshake": result})

    @routes.delete("/_emulator/subscription")
    async def unsubscribe(_: web.Request) -> web.Response:
        webhooks.subscription = None
        return control_json({"ok": True, "subscription": None})

    @routes.get("/_emulator/contacts/{account}/{user}")
    async def get_contact(request: web.Request) -> web.Response:
        account, user = request.match_info["account"], request.match_info["user"]
        return control_json({"ok": True, "contact": state.contact_view(account, user, spec.window_seconds())})

    @routes.put("/_emulator/contacts/{account}/{user}")
    @routes.patch("/_emulator/contacts/{account}/{user}")
    async def set_contact(request: web.Request) -> web.Response:
        account, user = request.match_info["account"], request.match_info["user"]
        body = await read_control_json(request)
        if not isinstance(body, dict) or not body or set(body) - spec.contact_fields:
            return control_fail(f"give some of {sorted(spec.contact_fields)}")
        if "last_inbound_time" in body:
            value = body["last_inbound_time"]
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                return control_fail("last_inbound_time must be unix seconds (a number) or null")
        if "available" in body and not isinstance(body["available"], bool):
            return control_fail("available must be true or false")
        state.contact(account, user).update(body)
        return control_json({"ok": True, "contact": state.contact_view(account, user, spec.window_seconds())})

    app.router.add_routes(routes)
