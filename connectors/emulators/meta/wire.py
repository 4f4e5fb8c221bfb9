"""JSON as Meta writes it, and request bodies as the Graph API reads them.

Meta serialises webhook bodies with escaped unicode and escaped slashes
(`"caf\\u00e9"`, `"https:\\/\\/..."`): a receiver that parses and re-serialises
the JSON gets other bytes, so its HMAC will not match. `meta_dumps` produces
that form; the signature is always computed over exactly the bytes sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

_CHUNK = 256 * 1024
_THREAD_HASH_FROM = 1024 * 1024


def meta_dumps(payload: Any) -> bytes:
    # json.dumps never writes a "/" outside a string, and writes a literal
    # backslash as "\\", so replacing every "/" is exact.
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode("ascii")


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=meta_dumps(payload), status=status, content_type="application/json", headers=headers)


class BodyError(ValueError):
    """The request body cannot be read (not JSON, too big, broken multipart)."""


@dataclass
class Upload:
    filename: str | None
    content_type: str | None
    data: bytes
    sha256: bytes  # the digest, computed once (off the event loop for big files)

    def summary(self) -> dict[str, Any]:
        return {"filename": self.filename, "content_type": self.content_type, "size": len(self.data),
                "sha256": self.sha256.hex()}


async def sha256_digest(data: bytes) -> bytes:
    """SHA-256 of `data`; big inputs are hashed in a thread (hashlib releases the GIL)."""
    if len(data) < _THREAD_HASH_FROM:
        return hashlib.sha256(data).digest()
    return await asyncio.to_thread(lambda: hashlib.sha256(data).digest())


@dataclass
class GraphBody:
    """A Graph request's parameters: a JSON object, form fields (values that are
    JSON objects or arrays are decoded, as the Graph API does) or multipart."""

    params: dict[str, Any] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    is_json: bool = False
    raw_json: Any = None

    def recorded(self) -> Any:
        if self.is_json:
            return self.raw_json
        recorded: dict[str, Any] = dict(self.params)
        recorded.update({name: upload.summary() for name, upload in self.uploads.items()})
        return recorded


def _decode_form_value(value: str) -> Any:
    stripped = value.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except ValueError:
            return value
    return value


async def read_graph_body(request: web.Request, upload_limit: int) -> GraphBody:
    if request.method in ("GET", "HEAD", "DELETE") or not request.body_exists:
        return GraphBody()
    content_type = request.content_type
    if content_type == "multipart/form-data":
        return await _read_multipart(request, upload_limit)
    raw = await request.read()
    if content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        return GraphBody(params={key: _decode_form_value(str(value)) for key, value in form.items()})
    if not raw.strip():
        return GraphBody(is_json=True, raw_json=None)
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise BodyError("the request body is not valid JSON") from None
    return GraphBody(params=parsed if isinstance(parsed, dict) else {}, is_json=True, raw_json=parsed)


async def _read_multipart(request: web.Request, upload_limit: int) -> GraphBody:
    body = GraphBody()
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                continue
            if part.filename is None:
                body.params[part.name] = _decode_form_value(await part.text())
                continue
            chunks: list[bytes] = []
            size = 0
            while chunk := await part.read_chunk(_CHUNK):
                size += len(chunk)
                if size > upload_limit:
                    raise BodyError(f"the file is larger than {upload_limit} bytes")
                chunks.append(chunk)
            content_type = part.headers.get("Content-Type")
            data = b"".join(chunks)
            body.uploads[part.name] = Upload(part.filename, content_type, data, await sha256_digest(data))
    except (ValueError, AssertionError) as error:
        if isinstance(error, BodyError):
            raise
        raise BodyError(f"the multipart body cannot be read: {error}") from None
    return body


async def read_control_json(request: web.Request) -> Any:
    """A control API body: JSON, or {} when empty; 400 when it is not JSON."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"ok": False, "error": "the body is not JSON"}),
                                 content_type="application/json") from None


def control_json(payload: Any, status: int = 200) -> web.Response:
    # The control API is for tests: plain UTF-8 JSON, easy to read in logs.
    return web.Response(body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(),
                        status=status, content_type="application/json")


def control_fail(message: str, status: int = 400, **extra: Any) -> web.Response:
    return control_json({"ok": False, "error": message, **extra}, status)
