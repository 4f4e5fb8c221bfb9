"""Webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw
body keyed with the App Secret>` (and the legacy SHA-1 `X-Hub-Signature`, which
Meta still sends alongside)."""

from __future__ import annotations

import hashlib
import hmac


def signature_256(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_sha1(app_secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(app_secret.encode(), body, hashlib.sha1).hexdigest()


def signature_headers(app_secret: str, body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature-256": signature_256(app_secret, body),
            "X-Hub-Signature": signature_sha1(app_secret, body)}


def verify_256(app_secret: str, body: bytes, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(signature_256(app_secret, body), header)
