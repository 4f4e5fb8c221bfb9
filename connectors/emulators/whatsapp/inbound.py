"""Inbound messages injected by tests (what a user sent the business number),
turned into the `messages` webhook the platform would send:

    {"phone_number_id": "1065...", "from": "16315551181", "name": "Ana",
     "type": "text", "text": "hi"}
    {"type": "image", "media": {"bytes_b64": "...", "mime_type": "image/png", "caption": "look"}}
    {"type": "document", "media": {"bytes_b64": "...", "mime_type": "application/pdf", "filename": "a.pdf"}}
    optional: "group_id": "...", "context": {"from": .., "id": wamid}, "timestamp": unix s,
              "fields": {...} (merged into the message object, e.g. {"interactive": {...}} with that type),
              "media_url": true (media objects also carry a download `url`, as newer API versions do),
              "duplicate": n (the same webhook n more times), "id": a wamid of your choice

Media bytes are stored (GET /v{N}/{media_id} and the download URL work);
`"size": N` instead of bytes makes N zero bytes. A message outside a group
opens the sender's customer-service window from its timestamp.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from aiohttp import web

from .media_api import download_url
from .state import WhatsAppState

_MEDIA = ("image", "document", "audio", "video", "sticker")
_CAPTIONED = ("image", "video", "document")


class InjectionError(ValueError):
    pass


def _media_object(state: WhatsAppState, request: web.Request, phone_number_id: str, kind: str,
                  spec: Any, with_url: bool) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise InjectionError(f'a {kind} message needs "media": {{"bytes_b64": ..., "mime_type": ...}}')
    if "bytes_b64" in spec:
        try:
            data = base64.b64decode(spec["bytes_b64"], validate=True)
        except (binascii.Error, TypeError):
            raise InjectionError("media.bytes_b64 is not base64") from None
    elif isinstance(spec.get("size"), int) and spec["size"] >= 0:
        data = bytes(spec["size"])
    else:
        raise InjectionError("media needs bytes_b64 (or a size)")
    default_type = {"image": "image/jpeg", "audio": "audio/ogg", "video": "video/mp4", "sticker": "image/webp",
                    "document": "application/pdf"}[kind]
    mime_type = spec.get("mime_type") or default_type
    stored = state.media.add(data, mime_type, spec.get("filename"), phone_number_id)
    media: dict[str, Any] = {}
    if kind in _CAPTIONED and spec.get("caption") is not None:
        media["caption"] = spec["caption"]
    if kind == "document" and spec.get("filename"):
        media["filename"] = spec["filename"]
    media.update({"mime_type": mime_type, "sha256": stored.sha256, "id": stored.id})
    if kind == "audio" and "voice" in spec:
        media["voice"] = bool(spec["voice"])
    if kind == "sticker":
        media["animated"] = bool(spec.get("animated", False))
    if with_url:
        media["url"] = download_url(state, request, stored.id)
    return media


def inject(state: WhatsAppState, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    phone_number_id = body.get("phone_number_id") or (state.config.phone_number_ids or (None,))[0]
    if not isinstance(phone_number_id, str) or not state.accepts_phone_number(phone_number_id):
        raise InjectionError("phone_number_id is required (a business number id the emulator accepts)")
    sender = body.get("from")
    if not isinstance(sender, str) or not sender.isdigit():
        raise InjectionError("from must be the user's wa_id (digits)")
    duplicate = body.get("duplicate", 0)
    if not isinstance(duplicate, int) or duplicate < 0:
        raise InjectionError("duplicate must be a non-negative integer")
    kind = body.get("type", "text")
    fields = body.get("fields") or {}
    if not isinstance(fields, dict):
        raise InjectionError("fields must be an object")
    timestamp = body.get("timestamp", time.time())
    if not isinstance(timestamp, (int, float)):
        raise InjectionError("timestamp must be unix seconds")
    wamid = body.get("id") or state.new_wamid(sender)

    message: dict[str, Any] = {"from": sender, "id": wamid, "timestamp": str(int(timestamp))}
    if body.get("group_id") is not None:
        message["group_id"] = str(body["group_id"])
    if isinstance(body.get("context"), dict):
        message["context"] = body["context"]
    if kind == "text":
        text = body.get("text")
        if isinstance(text, dict):
            text = text.get("body")
        if not isinstance(text, str) and "text" not in fields:
            raise InjectionError('a text message needs "text": "..."')
        if isinstance(text, str):
            message["text"] = {"body": text}
    elif kind in _MEDIA:
        message[kind] = _media_object(state, request, phone_number_id, kind, body.get("media"),
                                      bool(body.get("media_url")))
    elif kind not in fields:
        raise InjectionError(f'type {kind!r} needs its object in "fields" (e.g. {{"{kind}": {{...}}}})')
    message["type"] = kind
    message.update(fields)

    value = {"contacts": [{"profile": {"name": body.get("name") or sender}, "wa_id": sender}],
             "messages": [message]}
    raw = state.send_webhook(phone_number_id, value, {"kind": "messages", "wamid": wamid, "from": sender},
                             copies=1 + duplicate)
    if "group_id" not in message:
        state.note_inbound(phone_number_id, sender, float(timestamp))
    state.inbound.add({"wamid": wamid, "phone_number_id": phone_number_id, "from": sender, "type": kind,
                       "group_id": message.get("group_id"), "message": message, "received_at": time.time()})
    media_id = message[kind]["id"] if kind in _MEDIA else None
    return {"ok": True, "wamid": wamid, "phone_number_id": phone_number_id, "message": message,
            "media_id": media_id, "copies": 1 + duplicate, "raw": raw.decode("ascii"),
            "body": json.loads(raw)}
