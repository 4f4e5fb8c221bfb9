"""Media endpoints of the Cloud API:

    POST   /v{N}/{phone_number_id}/media   multipart: file, type (MIME type), messaging_product -> {"id"}
    GET    /v{N}/{media_id}                -> {"messaging_product","url","mime_type","sha256","file_size","id"}
    DELETE /v{N}/{media_id}                -> {"success": true}
    GET    /whatsapp_business/attachments/?mid=..&ext=..&hash=..   the bytes (bearer token required)

`sha256` is base64 of the SHA-256 digest, as the platform gives it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from aiohttp import web

from ..meta.errors import GraphError, unknown_object
from ..meta.graph import GraphCall
from .errors import invalid_parameter, missing_parameter
from .state import WhatsAppState

DOWNLOAD_PATH = "/whatsapp_business/attachments/"


def _url_hash(state: WhatsAppState, media_id: str) -> str:
    return hmac.new(state.config.app_secret.encode(), media_id.encode(), hashlib.sha256).hexdigest()[:24]


def download_url(state: WhatsAppState, request: web.Request, media_id: str) -> str:
    origin = request.url.origin()
    return f"{origin}{DOWNLOAD_PATH}?mid={media_id}&ext={int(time.time())}&hash={_url_hash(state, media_id)}"


async def upload(state: WhatsAppState, call: GraphCall) -> dict[str, Any]:
    phone_number_id = call.request.match_info["node"]
    if not state.accepts_phone_number(phone_number_id):
        raise unknown_object(phone_number_id, "post")
    params, uploads = call.body.params, call.body.uploads
    if params.get("messaging_product") is None:
        raise invalid_parameter("The parameter messaging_product is required.")
    if params.get("messaging_product") != "whatsapp":
        raise invalid_parameter(f'Param messaging_product must be one of {{WHATSAPP}} - got '
                                f'"{params.get("messaging_product")}".')
    file = uploads.get("file")
    if file is None:
        raise missing_parameter("The parameter file is required (a multipart file part).")
    mime_type = params.get("type") or file.content_type
    if not isinstance(mime_type, str) or "/" not in mime_type:
        raise missing_parameter("The parameter type (the file's MIME type) is required.")
    stored = state.media.add(file.data, mime_type.lower(), file.filename, phone_number_id, file.sha256)
    return {"id": stored.id}


async def describe(state: WhatsAppState, call: GraphCall) -> dict[str, Any]:
    """GET /{node}: a media object, or a business phone number (what a health check reads)."""
    media_id = call.request.match_info["node"]
    stored = state.media.get(media_id)
    if stored is None and not state.media.issued(media_id) and state.accepts_phone_number(media_id):
        return {"verified_name": "Chat4All Local", "code_verification_status": "VERIFIED",
                "display_phone_number": state.display_phone_number(media_id), "quality_rating": "GREEN",
                "platform_type": "CLOUD_API", "throughput": {"level": "STANDARD"}, "id": media_id}
    if stored is None:
        raise unknown_object(media_id, "get")
    return {"messaging_product": "whatsapp", "url": download_url(state, call.request, media_id),
            "mime_type": stored.mime_type, "sha256": stored.sha256, "file_size": stored.size, "id": stored.id}


async def delete(state: WhatsAppState, call: GraphCall) -> dict[str, Any]:
    media_id = call.request.match_info["node"]
    if not state.media.delete(media_id):
        raise unknown_object(media_id, "delete")
    return {"success": True}


async def download(state: WhatsAppState, call: GraphCall) -> web.StreamResponse:
    media_id = call.request.query.get("mid", "")
    stored = state.media.get(media_id)
    given_hash = call.request.query.get("hash", "")
    if stored is None or not hmac.compare_digest(given_hash, _url_hash(state, media_id)):
        raise GraphError(404, 100, "(#100) The media URL is not valid or the media no longer exists")
    return web.Response(body=stored.data, headers={"Content-Type": stored.mime_type})
