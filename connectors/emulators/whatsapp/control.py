"""WhatsApp-only control API routes (the shared ones are in meta/control.py):

    POST /_emulator/inbound     inject a user's message (see inbound.py); answers the wamid and exact body
    GET  /_emulator/inbound     the injected messages (?phone_number_id=&from=&wamid=), with read marks
    POST /_emulator/statuses    {"id": wamid, "statuses": ["read", "delivered"], "errors": [..],
                                 "duplicate": n, "pricing": bool} status webhooks now, in that order;
                                for a wamid the emulator did not issue also give phone_number_id and recipient_id
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..meta.wire import control_fail, control_json, read_control_json
from .config import STATUSES
from .errors import generic_failure
from .inbound import InjectionError, inject
from .state import WhatsAppState
from .statuses import push_status


def add_whatsapp_routes(app: web.Application, state: WhatsAppState) -> None:
    routes = web.RouteTableDef()

    @routes.post("/_emulator/inbound")
    async def post_inbound(request: web.Request) -> web.Response:
        body = await read_control_json(request)
        if not isinstance(body, dict):
            return control_fail("the body must be a JSON object")
        try:
            return control_json(inject(state, request, body))
        except InjectionError as error:
            return control_fail(str(error))

    @routes.get("/_emulator/inbound")
    async def list_inbound(request: web.Request) -> web.Response:
        try:
            found = state.inbound.filter(request.query, ("phone_number_id", "from", "wamid", "type"))
        except ValueError:
            return control_fail("since_seq and limit must be integers")
        return control_json({"ok": True, "count": len(found), "inbound": found})

    @routes.post("/_emulator/statuses")
    async def post_statuses(request: web.Request) -> web.Response:
        body = await read_control_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            return control_fail('give {"id": wamid, "statuses": ["delivered", "read", ...]}')
        statuses = body.get("statuses")
        if not isinstance(statuses, list) or not statuses or any(s not in STATUSES for s in statuses):
            return control_fail(f"statuses must be a non-empty list of {list(STATUSES)}")
        duplicate = body.get("duplicate", 0)
        if not isinstance(duplicate, int) or duplicate < 0:
            return control_fail("duplicate must be a non-negative integer")
        message: dict[str, Any] | None = state.messages.find(wamid=body["id"])
        if message is None:
            if not isinstance(body.get("phone_number_id"), str) or not isinstance(body.get("recipient_id"), str):
                return control_fail("unknown wamid: give phone_number_id and recipient_id too")
            message = {"wamid": body["id"], "phone_number_id": body["phone_number_id"],
                       "recipient": body["recipient_id"], "recipient_type": body.get("recipient_type", "individual"),
                       "type": body.get("type", "text")}
        errors = body.get("errors")
        if errors is not None and not isinstance(errors, list):
            return control_fail("errors must be a list of error objects")
        pricing = body.get("pricing", state.status_policy.current.pricing)
        sent = []
        for status in statuses:
            status_errors = (errors or [generic_failure()]) if status == "failed" else None
            sent.append(push_status(state, message, status, status_errors, 1 + duplicate, bool(pricing)))
        return control_json({"ok": True, "statuses": sent})

    app.router.add_routes(routes)
