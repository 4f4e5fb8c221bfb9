"""`POST /v{N}/{ig_user_id}/messages` (or `/v{N}/me/messages`): the Send API.

    {"recipient": {"id": IGSID}, "message": {"text": ".."}, "messaging_type": "RESPONSE"}
    {"recipient": {"id": IGSID}, "message": {"attachment": {"type": "image", "payload": {"url": ".."}}}}
    {"recipient": {"id": IGSID}, "sender_action": "typing_on" | "typing_off" | "mark_seen"}

Checked in order: the body (100), the user (551), the reply window (10 /
2018278; a MESSAGE_TAG with tag HUMAN_AGENT allows 7 days), the call rate
(613). Accepted: `{"recipient_id", "message_id"}`; then, in the background,
the attachment URL is fetched and measured (recorded only: Instagram sends no
webhook for it), the echo webhook and, per policy, a read receipt follow.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from ..meta.graph import GraphCall
from ..meta.media import fetch_url, is_http_url
from .config import ATTACHMENT_LIMIT_BYTES, ATTACHMENT_TYPES, TEXT_LIMIT_CHARS, InstagramPolicy
from .errors import invalid_parameter, outside_window, user_unavailable
from .state import InstagramState, now_ms

_SENDER_ACTIONS = ("typing_on", "typing_off", "mark_seen")


def _check_message(message: Any) -> str:
    """The message's kind: "text" or the attachment type."""
    if not isinstance(message, dict):
        raise invalid_parameter("Param message must be a JSON object")
    text, attachment = message.get("text"), message.get("attachment")
    if text is None and attachment is None:
        raise invalid_parameter("Message cannot be empty, must provide valid attachment or text")
    if text is not None and attachment is not None:
        raise invalid_parameter("Only one of text or attachment can be specified")
    if text is not None:
        if not isinstance(text, str) or not text.strip():
            raise invalid_parameter("Param message[text] must be a non-empty UTF-8 encoded string")
        if len(text) > TEXT_LIMIT_CHARS:
            raise invalid_parameter(f"Length of param message[text] must be less than or equal to {TEXT_LIMIT_CHARS}")
        return "text"
    if not isinstance(attachment, dict):
        raise invalid_parameter("Param message[attachment] must be a JSON object")
    kind = attachment.get("type")
    if kind not in ATTACHMENT_TYPES:
        raise invalid_parameter(f"Param message[attachment][type] must be one of {{{', '.join(ATTACHMENT_TYPES)}}}"
                                f' - got "{kind}"')
    payload = attachment.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("url"), str) or not is_http_url(payload["url"]):
        raise invalid_parameter("Param message[attachment][payload][url] must be a valid http or https URL")
    return str(kind)


def _check_messaging_type(params: dict[str, Any]) -> bool:
    """Validates messaging_type / tag; True when the HUMAN_AGENT tag applies."""
    messaging_type = params.get("messaging_type", "RESPONSE")
    if messaging_type not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        raise invalid_parameter(f'Param messaging_type must be one of {{RESPONSE, UPDATE, MESSAGE_TAG}} - '
                                f'got "{messaging_type}"')
    if messaging_type != "MESSAGE_TAG":
        return False
    tag = params.get("tag")
    if tag != "HUMAN_AGENT":
        raise invalid_parameter(f'Param tag must be one of {{HUMAN_AGENT}} - got "{tag}"')
    return True


async def post_messages(state: InstagramState, call: GraphCall) -> dict[str, Any]:
    body = call.body
    if body.is_json and not isinstance(body.raw_json, dict):
        raise invalid_parameter("The request body must be a JSON object")
    account = state.account_for(call.request.match_info["node"], call.token)
    call.record["ig_user_id"] = account
    params = body.params
    recipient = params.get("recipient")
    if recipient is None:
        raise invalid_parameter("The parameter recipient is required")
    if not isinstance(recipient, dict) or not isinstance(recipient.get("id"), (str, int)) or not recipient["id"]:
        raise invalid_parameter('Param recipient[id] must be a valid ID string (e.g., "123")')
    user = str(recipient["id"])
    if "sender_action" in params:
        if params["sender_action"] not in _SENDER_ACTIONS:
            raise invalid_parameter(f"Param sender_action must be one of {{{', '.join(_SENDER_ACTIONS)}}}")
        return {"recipient_id": user}
    if "message" not in params:
        raise invalid_parameter("The parameter message is required")
    kind = _check_message(params["message"])
    human_agent = _check_messaging_type(params)

    if not state.contact(account, user)["available"]:
        raise user_unavailable()
    limits = state.limits.current
    if limits.window_enabled and not state.in_window(account, user, state.window_seconds(human_agent)):
        raise outside_window()
    state.check_limits(account, kind in ("audio", "video"))

    mid = state.new_mid(account)
    message = state.messages.add({
        "mid": mid,
        "ig_user_id": account,
        "recipient_id": user,
        "type": kind,
        "body": body.raw_json if body.is_json else params,
        "accepted_at": time.time(),
        "attachment_fetch": None,
        "webhooks": [],
    })
    policy = dataclasses.replace(state.policy.current)
    state.tasks.spawn(after_send(state, message, params["message"], policy), name=f"after send {mid}")
    return {"recipient_id": user, "message_id": mid}


def _echo_message(mid: str, sent: dict[str, Any]) -> dict[str, Any]:
    echo: dict[str, Any] = {"mid": mid}
    if "text" in sent:
        echo["text"] = sent["text"]
    else:
        attachment = sent["attachment"]
        echo["attachments"] = [{"type": attachment["type"], "payload": {"url": attachment["payload"]["url"]}}]
    echo["is_echo"] = True
    return echo


async def after_send(state: InstagramState, message: dict[str, Any], sent: dict[str, Any],
                     policy: InstagramPolicy) -> None:
    delay = policy.delay_ms / 1000.0
    copies = 2 if policy.duplicate else 1
    account, user, mid = message["ig_user_id"], message["recipient_id"], message["mid"]
    if "attachment" in sent:
        # The echo does not wait for the fetch: Meta echoes at once.
        state.tasks.spawn(_fetch_attachment(state, message, sent["attachment"]), name=f"fetch {mid}")
    if policy.echo:
        await asyncio.sleep(delay)
        event = {"sender": {"id": account}, "recipient": {"id": user}, "timestamp": now_ms(),
                 "message": _echo_message(mid, sent)}
        state.send_event(account, event, {"kind": "echo", "mid": mid}, copies)
        message["webhooks"].append("echo")
    if policy.auto_read:
        await asyncio.sleep(delay)
        send_read(state, account, user, mid, copies)
        message["webhooks"].append("read")


async def _fetch_attachment(state: InstagramState, message: dict[str, Any], attachment: dict[str, Any]) -> None:
    limit = ATTACHMENT_LIMIT_BYTES[attachment["type"]]
    result = (await fetch_url(state.webhooks.session(), attachment["payload"]["url"], limit)).as_dict()
    result["limit"] = limit
    message["attachment_fetch"] = result


def send_read(state: InstagramState, account: str, user: str, mid: str, copies: int = 1) -> bytes:
    event = {"sender": {"id": user}, "recipient": {"id": account}, "timestamp": now_ms(), "read": {"mid": mid}}
    return state.send_event(account, event, {"kind": "read", "mid": mid}, copies)
