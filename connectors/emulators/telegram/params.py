"""Bot API request parameters, read the way the real server reads them.

The real server accepts parameters in the query string, a JSON body, a
form-urlencoded body or a multipart/form-data body, and treats them all as
strings: `"chat_id": "42"` and `"chat_id": 42` are the same, nested objects may
come as JSON text, and an empty value counts as absent.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import aiohttp
from aiohttp import web

from .config import UPLOAD_LIMIT_BYTES

_CHUNK = 256 * 1024
_INT_PREFIX = re.compile(r"\s*[-+]?\d+")


class BotApiError(Exception):
    """An answer `{"ok":false,"error_code":N,"description":..}`."""

    def __init__(self, code: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(message: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {message}")


def too_many_requests(retry_after: int) -> BotApiError:
    return BotApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


def unauthorized() -> BotApiError:
    return BotApiError(401, "Unauthorized")


def not_found() -> BotApiError:
    return BotApiError(404, "Not Found")


def entity_too_large() -> BotApiError:
    return BotApiError(413, "Request Entity Too Large")


class Upload:
    """A file part of a multipart request."""

    __slots__ = ("field", "filename", "content_type", "data", "sha256")

    def __init__(self, field: str, filename: str, content_type: str, data: bytes, sha256: str):
        self.field = field
        self.filename = filename
        self.content_type = content_type
        self.data = data
        self.sha256 = sha256

    @property
    def size(self) -> int:
        return len(self.data)

    def summary(self) -> dict[str, Any]:
        return {"filename": self.filename, "size": self.size, "sha256": self.sha256, "content_type": self.content_type}


class Params:
    """Parameter access with the real server's leniency."""

    __slots__ = ("values", "uploads")

    def __init__(self, values: dict[str, Any], uploads: dict[str, Upload] | None = None):
        self.values = values
        self.uploads = uploads or {}

    def raw(self, name: str) -> Any:
        return self.values.get(name)

    def str(self, name: str) -> str:
        value = self.values.get(name)
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        return json.dumps(value, ensure_ascii=False)

    def has(self, name: str) -> bool:
        return self.str(name) != ""

    def int(self, name: str, default: int = 0, low: int | None = None, high: int | None = None) -> int:
        value = self.values.get(name)
        if isinstance(value, bool):
            number = int(value)
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float):
            number = int(value)
        else:
            text = self.str(name)
            if text == "":
                number = default
            else:
                # Like td::to_integer: a leading integer counts, garbage is 0.
                match = _INT_PREFIX.match(text)
                number = int(match.group()) if match else 0
        if low is not None and number < low:
            number = low
        if high is not None and number > high:
            number = high
        return number

    def bool(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return value != 0
        return self.str(name).lower() in ("true", "1")

    def json(self, name: str) -> Any:
        """A structured parameter: given as JSON text in forms, as is in JSON bodies."""
        value = self.values.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {name} JSON object") from None
        return value


async def read_params(request: web.Request) -> Params:
    """Every parameter of a Bot API request: query string first, then the body."""
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.method not in ("POST", "PUT", "PATCH") or not request.body_exists:
        return Params(values, uploads)
    if request.content_length is not None and request.content_length > UPLOAD_LIMIT_BYTES + 1024 * 1024:
        raise entity_too_large()
    content_type = request.content_type
    try:
        if content_type == "multipart/form-data":
            await _read_multipart(request, values, uploads)
        elif content_type == "application/x-www-form-urlencoded":
            values.update((key, value) for key, value in (await request.post()).items() if isinstance(value, str))
        elif content_type == "application/json":
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise bad_request("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise bad_request("can't parse JSON object")
                values.update(body)
        # Any other body is ignored, as the real server does.
    except web.HTTPRequestEntityTooLarge:
        raise entity_too_large() from None
    return Params(values, uploads)


async def _read_multipart(request: web.Request, values: dict[str, Any], uploads: dict[str, Upload]) -> None:
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            return
        if not isinstance(part, aiohttp.BodyPartReader):
            continue  # nested multipart: not part of the Bot API
        name = part.name or ""
        if part.filename is None:
            values[name] = await part.text()
            continue
        digest = hashlib.sha256()
        chunks = []
        size = 0
        while True:
            chunk = await part.read_chunk(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > UPLOAD_LIMIT_BYTES:
                raise entity_too_large()
            digest.update(chunk)
            chunks.append(chunk)
        content_type = part.headers.get("Content-Type", "application/octet-stream")
        uploads[name] = Upload(name, part.filename, content_type, b"".join(chunks), digest.hexdigest())
        values.setdefault(name, "")  # present, as an upload: `Params.has` stays false


def recorded_params(params: Params) -> dict[str, Any]:
    """The parameters as the control API shows them: uploads summarised."""
    if not params.uploads:
        return params.values
    shown = dict(params.values)
    for name, upload in params.uploads.items():
        shown[name] = upload.summary()
    return shown
