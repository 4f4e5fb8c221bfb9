"""`POST /v{N}/{phone_number_id}/messages`: sends, and marking a received message read.

A send is validated, checked against the rate limits, accepted with a wamid
and recorded; what happens next (statuses, a late failure) runs in the
background (statuses.after_send).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ..meta.errors import unknown_object
from ..meta.graph import GraphCall
from .errors import invalid_parameter, invalid_value, missing_parameter
from .state import WhatsAppState
from .statuses import after_send
from .validation import validate_send


def _window(state: WhatsAppState, phone_number_id: str, send_type: str, recipient_type: str,
            recipient: str) -> str:
    """"open" or "closed" for a free-form message to a user; "n/a" when no window applies."""
    if send_type == "template" or recipient_type == "group" or not state.window_applies():
        return "n/a"
    return "open" if state.in_window(phone_number_id, recipient, state.window_seconds()) else "closed"


async def post_messages(state: WhatsAppState, call: GraphCall) -> dict[str, Any]:
    phone_number_id = call.request.match_info["node"]
    if not state.accepts_phone_number(phone_number_id):
        raise unknown_object(phone_number_id, "post")
    body = call.body
    if body.is_json and not isinstance(body.raw_json, dict):
        raise invalid_parameter("The request body must be a JSON object.")
    params = body.params
    if params.get("status") == "read":
        return _mark_read(state, phone_number_id, params)

    send = validate_send(params, lambda media_id: state.media.get(media_id) is not None)
    state.check_limits(phone_number_id, send.recipient)
    wamid = state.new_wamid(send.recipient)
    message = state.messages.add({
        "wamid": wamid,
        "phone_number_id": phone_number_id,
        "to": send.to,
        "recipient": send.recipient,
        "recipient_type": send.recipient_type,
        "type": send.type,
        "body": body.raw_json if body.is_json else params,
        "accepted_at": time.time(),
        "window": _window(state, phone_number_id, send.type, send.recipient_type, send.recipient),
        "outcome": "accepted",
        "statuses": [],
        "media": None,
        "errors": None,
    })
    policy = dataclasses.replace(state.status_policy.current)
    state.tasks.spawn(after_send(state, message, send, policy), name=f"after send {wamid}")

    reply: dict[str, Any] = {"messaging_product": "whatsapp"}
    if send.recipient_type == "individual":
        reply["contacts"] = [{"input": send.to, "wa_id": send.recipient}]
    sent: dict[str, Any] = {"id": wamid}
    if send.is_template:
        sent["message_status"] = "accepted"
    reply["messages"] = [sent]
    return reply


def _mark_read(state: WhatsAppState, phone_number_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """{"messaging_product": "whatsapp", "status": "read", "message_id": wamid[, "typing_indicator": ..]}"""
    if params.get("messaging_product") != "whatsapp":
        raise invalid_parameter("The parameter messaging_product is required and must be whatsapp.")
    message_id = params.get("message_id")
    if not message_id:
        raise missing_parameter("The parameter message_id is required.")
    inbound = state.inbound.find(wamid=message_id, phone_number_id=phone_number_id)
    if inbound is None:
        raise invalid_value(f"Param message_id is not a message this business number received: {message_id}")
    inbound["read_marked_at"] = time.time()
    if "typing_indicator" in params:
        inbound["typing_indicator"] = params["typing_indicator"]
    return {"success": True}
