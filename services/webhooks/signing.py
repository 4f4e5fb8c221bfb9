"""The webhook signature scheme, documented in proto/chat4all/webhooks/v1/service.proto:

    X-Chat4All-Timestamp: <unix seconds>
    X-Chat4All-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + raw_body)>

The timestamp is inside the signed text so a captured request cannot be replayed later with a
fresh timestamp; receivers reject old ones. `verify` is what a receiver does (tests use it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TIMESTAMP_HEADER = "X-Chat4All-Timestamp"
SIGNATURE_HEADER = "X-Chat4All-Signature"
SCHEME = "v1"
# How far from now a receiver accepts a timestamp.
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    # 256 random bits; the prefix makes a leaked secret recognisable to secret scanners.
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: f"{SCHEME}={signature(secret, timestamp, body)}"}


def verify(secret: str, headers, body: bytes, now: float, tolerance: float = TOLERANCE_SECONDS) -> bool:
    """Whether a received request is signed with `secret` and recent; `headers` is a
    case-insensitive mapping (aiohttp's request.headers)."""
    try:
        timestamp = int(headers.get(TIMESTAMP_HEADER, ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    for entry in headers.get(SIGNATURE_HEADER, "").split(","):
        scheme, _, value = entry.strip().partition("=")
        if scheme == SCHEME and hmac.compare_digest(value, expected):
            return True
    return False
