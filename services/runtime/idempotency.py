"""What makes two requests "the same" for AIP-155 idempotency checks."""

from __future__ import annotations

import hashlib

from google.protobuf.message import Message


def request_hash(method: str, request: Message) -> bytes:
    """A digest of the method and the request as sent; equal only for the same request."""
    return hashlib.sha256(method.encode() + b"\0" + request.SerializeToString(deterministic=True)).digest()
