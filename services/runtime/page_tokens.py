"""Opaque page tokens and cursors (AIP-158): base64url JSON bound to the request
they belong to, so a token replayed against another request is refused."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from services.runtime.errors import InvalidArgument


def encode(scope: str, **position: Any) -> str:
    raw = json.dumps({"s": scope, **position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(token: str, scope: str, field: str = "page_token") -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidArgument(f"{field} is malformed") from None
    if not isinstance(data, dict) or data.pop("s", None) != scope:
        raise InvalidArgument(f"{field} belongs to another request")
    return data
