"""Inbound Instagram messages injected by tests, read receipts, and the media
the emulator serves for injected attachments.

    POST /_emulator/inbound {"ig_user_id": "1784...", "from": IGSID, "text": "hi"}
         {"from": IGSID, "attachments": [{"type": "image", "bytes_b64": "...", "mime_type": "image/png"},
                                         {"type": "video", "url": "http://..."}]}
         optional: "timestamp": ms, "reply_to": {"mid": ..}, "fields": {...} (merged into `message`),
                   "duplicate": n (the same webhook n more times), "mid": a message id of your choice
    POST /_emulator/reads   {"mid": ..} (a message we sent; else also "ig_user_id" and "from")
    GET  /ig_messaging_cdn/?asset_id=..&signature=..   (and /_emulator/media/{id}) the attachment bytes

An injected message opens the sender's reply window from its timestamp.
Attachment bytes are stored and their payload URL points at this emulator.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from aiohttp import web

from ..meta.media import is_http_url
from ..meta.wire import control_fail, control_json, read_control_json
from .config import ATTACHMENT_TYPES
from .sending import send_read
from .state import CDN_PATH, InstagramState

_DEFAULT_MIME = {"image": "image/jpeg", "audio": "audio/mp4", "video": "video/mp4", "file": "application/pdf"}


class InjectionError(ValueError):
    pass


def _attachment(state: InstagramState, request: web.Request, account: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict) or spec.get("type") not in (*ATTACHMENT_TYPES, "share", "story_mention"):
        raise InjectionError(f"an attachment needs a type among {list(ATTACHMENT_TYPES)}")
    if "url" in spec:
        if not isinstance(spec["url"], str) or not is_http_url(spec["url"]):
            raise InjectionError("attachment url must be an http(s) URL")
        return {"type": spec["type"], "payload": {"url": spec["url"]}}
    try:
        data = base64.b64decode(spec.get("bytes_b64", ""), validate=True) if "bytes_b64" in spec \
            else bytes(int(spec.get("size", 0)))
    except (binascii.Error, TypeError, ValueError):
        raise InjectionError("attachment bytes_b64 is not base64") from None
    stored = state.media.add(data, spec.get("mime_type") or _DEFAULT_MIME.get(spec["type"], "application/octet-stream"),
                             spec.get("filename"), account)
    return {"type": spec["type"], "payload": {"url": state.media_url(request, stored.id)}}


def inject(state: InstagramState, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    account = body.get("ig_user_id") or state.default_account
    if not isinstance(account, str) or not state.accepts_account(account):
        raise InjectionError("ig_user_id must be an account the emulator accepts")
    sender = body.get("from")
    if not isinstance(sender, str) or not sender:
        raise InjectionError("from must be the user's IGSID (a string)")
    duplicate = body.get("duplicate", 0)
    if not isinstance(duplicate, int) or duplicate < 0:
        raise InjectionError("duplicate must be a non-negative integer")
    timestamp = body.get("timestamp", int(time.time() * 1000))
    if not isinstance(timestamp, int):
        raise InjectionError("timestamp must be unix milliseconds (an integer)")
    fields = body.get("fields") or {}
    if not isinstance(fields, dict):
        raise InjectionError("fields must be an object")
    mid = body.get("mid") or state.new_mid(account)
    message: dict[str, Any] = {"mid": mid}
    if isinstance(body.get("text"), str):
        message["text"] = body["text"]
    attachments = body.get("attachments")
    if attachments is not None:
        if not isinstance(attachments, list) or not attachments:
            raise InjectionError("attachments must be a non-empty list")
        message["attachments"] = [_attachment(state, request, account, spec) for spec in attachments]
    if isinstance(body.get("reply_to"), dict):
        message["reply_to"] = body["reply_to"]
    message.update(fields)
    if len(message) == 1:
        raise InjectionError('give "text" or "attachments"')
    event = {"sender": {"id": sender}, "recipient": {"id": account}, "timestamp": timestamp, "message": message}
    raw = state.send_event(account, event, {"kind": "message", "mid": mid, "from": sender}, 1 + duplicate)
    state.note_inbound(account, sender, timestamp / 1000.0)
    return {"ok": True, "mid": mid, "ig_user_id": account, "message": message, "copies": 1 + duplicate,
            "raw": raw.decode("ascii"), "body": json.loads(raw)}


def add_instagram_routes(app: web.Application, state: InstagramState) -> None:
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

    @routes.post("/_emulator/reads")
    async def post_read(request: web.Request) -> web.Response:
        body = await read_control_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("mid"), str):
            return control_fail('give {"mid": ...}')
        sent = state.messages.find(mid=body["mid"])
        account = body.get("ig_user_id") or (sent and sent["ig_user_id"])
        user = body.get("from") or (sent and sent["recipient_id"])
        if not isinstance(account, str) or not isinstance(user, str):
            return control_fail("unknown mid: give ig_user_id and from too")
        duplicate = body.get("duplicate", 0)
        if not isinstance(duplicate, int) or duplicate < 0:
            return control_fail("duplicate must be a non-negative integer")
        raw = send_read(state, account, user, body["mid"], 1 + duplicate)
        return control_json({"ok": True, "raw": raw.decode("ascii"), "body": json.loads(raw)})

    async def serve(media_id: str) -> web.Response:
        stored = state.media.get(media_id)
        if stored is None:
            return web.Response(status=404, text="URL signature expired")
        return web.Response(body=stored.data, headers={"Content-Type": stored.mime_type})

    @routes.get(CDN_PATH)
    async def cdn(request: web.Request) -> web.Response:
        media_id = request.query.get("asset_id", "")
        if not state.signature_ok(media_id, request.query.get("signature", "")):
            return web.Response(status=403, text="Bad URL hash")
        return await serve(media_id)

    @routes.get("/_emulator/media/{media_id}")
    async def control_media(request: web.Request) -> web.Response:
        return await serve(request.match_info["media_id"])

    app.router.add_routes(routes)
