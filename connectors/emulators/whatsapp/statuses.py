"""Status webhooks, and what happens to a send after it was accepted.

Like the real platform, an accepted send (200 with a wamid) can still fail
later, and that failure arrives only as a `failed` status webhook:
- a free-form message to a user whose last message is older than the window:
  131047 (templates and group messages are not subject to the window);
- media by link that cannot be fetched, is too large for its type or has a
  content type the type does not take; media by id over the type's limit: 131053.
Otherwise the status policy's `auto` statuses follow, `delay_ms` apart.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from ..meta.media import fetch_url
from .config import MEDIA_LIMIT_BYTES, MEDIA_TYPES, StatusPolicy
from .errors import media_error, reengagement_error
from .state import WhatsAppState
from .validation import SendRequest


def _category(message: dict[str, Any]) -> str:
    return "utility" if message.get("type") == "template" else "service"


def status_object(state: WhatsAppState, message: dict[str, Any], status: str,
                  errors: list[dict[str, Any]] | None = None, pricing: bool = True) -> dict[str, Any]:
    now = int(time.time())
    obj: dict[str, Any] = {"id": message["wamid"], "status": status, "timestamp": str(now),
                           "recipient_id": message["recipient"]}
    if message.get("recipient_type") == "group":
        obj["recipient_type"] = "group"
    if pricing and status in ("sent", "delivered"):
        category = _category(message)
        key = f"{message['phone_number_id']}:{message['recipient']}:{category}".encode()
        conversation: dict[str, Any] = {"id": hashlib.md5(key).hexdigest(), "origin": {"type": category}}
        if status == "sent":
            conversation["expiration_timestamp"] = str(now + 24 * 3600)
        obj["conversation"] = conversation
        obj["pricing"] = {"billable": category != "service", "pricing_model": "CBP", "category": category}
    if errors:
        obj["errors"] = errors
    return obj


def push_status(state: WhatsAppState, message: dict[str, Any], status: str,
                errors: list[dict[str, Any]] | None = None, copies: int = 1,
                pricing: bool = True) -> dict[str, Any]:
    """Send one status webhook for a message now; the status object sent."""
    obj = status_object(state, message, status, errors, pricing)
    body = state.send_webhook(message["phone_number_id"], {"statuses": [obj]},
                              {"kind": "statuses", "wamid": message["wamid"], "status": status}, copies)
    message.setdefault("statuses", []).append({"status": status, "at": time.time(), "copies": copies,
                                               "body": body.decode("ascii")})
    message["outcome"] = status
    if errors:
        message["errors"] = errors
    return obj


def _unsupported_type(kind: str, content_type: str | None) -> str | None:
    allowed = MEDIA_TYPES.get(kind)
    if allowed is None or not content_type or content_type == "application/octet-stream":
        return None
    if content_type.lower() in allowed:
        return None
    return f"Unsupported content type {content_type} for {kind} messages; supported: {', '.join(allowed)}"


async def _media_problem(state: WhatsAppState, message: dict[str, Any], send: SendRequest) -> str | None:
    """Why the message's media cannot be delivered, or None."""
    kind = send.type
    limit = MEDIA_LIMIT_BYTES[kind]
    if send.media_link is not None:
        result = await fetch_url(state.webhooks.session(), send.media_link, limit)
        message["media"] = result.as_dict()
        if result.too_large:
            return f"Media file size {result.size} bytes exceeds the {limit} byte limit for {kind} messages"
        if result.outcome == "failed":
            return result.error or "Downloading media from weblink failed"
        return _unsupported_type(kind, result.content_type)
    stored = state.media.get(send.media_id or "")
    if stored is None:
        return f"Media id {send.media_id} is no longer available"
    message["media"] = {"id": stored.id, "size": stored.size, "content_type": stored.mime_type,
                        "sha256": stored.sha256}
    if stored.size > limit:
        return f"Media file size {stored.size} bytes exceeds the {limit} byte limit for {kind} messages"
    return _unsupported_type(kind, stored.mime_type)


async def after_send(state: WhatsAppState, message: dict[str, Any], send: SendRequest,
                     policy: StatusPolicy) -> None:
    delay = policy.delay_ms / 1000.0
    copies = 2 if policy.duplicate else 1
    if message["window"] == "closed":
        await asyncio.sleep(delay)
        push_status(state, message, "failed", [reengagement_error()], copies)
        return
    if send.type not in ("text", "template"):
        problem = await _media_problem(state, message, send)
        if problem is not None:
            await asyncio.sleep(delay)
            push_status(state, message, "failed", [media_error(problem)], copies)
            return
    statuses = list(reversed(policy.auto)) if policy.reverse_order else list(policy.auto)
    for status in statuses:
        await asyncio.sleep(delay)
        push_status(state, message, status, copies=copies, pricing=policy.pricing)
