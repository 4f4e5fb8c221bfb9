"""API key secrets: made, recognised, hashed, and sealed for an idempotent retry.

A secret reads `c4a_<key_id>.<random>`: the key id (16 hex digits, public: it names the key in
ListApiKeys and in the headers the services see) and 32 random bytes in unpadded base64url
(43 characters). Only SHA-256 of the whole secret is stored. A fast hash is right here, unlike
for passwords: 256 random bits cannot be guessed, so slowing each guess down buys nothing, and
every request through the front door may need a hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

PREFIX = "c4a_"
_RANDOM_BYTES = 32
_SECRET = re.compile(r"c4a_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class Secret:
    key_id: str
    random: bytes  # the 32 random bytes

    @property
    def text(self) -> str:
        return f"{PREFIX}{self.key_id}.{base64.urlsafe_b64encode(self.random).rstrip(b'=').decode()}"

    def __repr__(self) -> str:  # never print the secret by accident
        return f"Secret(key_id={self.key_id!r})"


def new_secret() -> Secret:
    return Secret(secrets.token_hex(8), secrets.token_bytes(_RANDOM_BYTES))


def key_id_of(text: str) -> str | None:
    """The key id of a presented secret, or None when it is not shaped like one of ours."""
    match = _SECRET.fullmatch(text)
    return match[1] if match else None


def secret_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def matches(text: str, stored_hash: bytes) -> bool:
    """Constant time: how long the comparison takes says nothing about the stored hash."""
    return hmac.compare_digest(secret_hash(text), stored_hash)


# Sealing. AIP-155: CreateApiKey retried with the same request_id answers with the same secret,
# so the request log must be able to give it back, yet the tables alone must not. The random
# part is kept XORed with a pad derived from the request_id, which is stored only hashed: only
# whoever sent the request can unseal it. Each request_id seals exactly one secret, so the pad
# is never reused.


def request_key(caller: str, request_id: uuid.UUID) -> bytes:
    """How the request log finds a request, without holding its request_id."""
    return hashlib.sha256(b"chat4all api key request\0" + caller.encode() + b"\0" + request_id.bytes).digest()


def _pad(caller: str, request_id: uuid.UUID, key_id: str) -> bytes:
    key = request_id.bytes + caller.encode()
    return hmac.new(key, b"chat4all api key seal\0" + key_id.encode(), hashlib.sha256).digest()


def seal(secret: Secret, caller: str, request_id: uuid.UUID) -> bytes:
    return bytes(a ^ b for a, b in zip(secret.random, _pad(caller, request_id, secret.key_id), strict=True))


def unseal(sealed: bytes, key_id: str, caller: str, request_id: uuid.UUID) -> Secret:
    return Secret(key_id, bytes(a ^ b for a, b in zip(sealed, _pad(caller, request_id, key_id), strict=True)))
