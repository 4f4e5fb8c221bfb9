"""Which client a resource belongs to, and whether the caller may touch it.

Clients reach the services only through the front door, which authenticates them and sets
the `x-chat4all-client-id` metadata (overwriting whatever the client sent). A call without it
comes from inside the mesh (the router, connectors, another service) and may touch anything.

Every user, conversation, file and webhook records the client that created it
(`owner_client_id`, a webhook's `client_id`): '' for what an internal call created, and for
rows older than tenancy, visible to internal callers only. Messages and dead letters are their
conversation's.
A client asking for another client's resource gets NOT_FOUND with the very message an unknown
id gets, never PERMISSION_DENIED: whether the id exists elsewhere is none of its business.

A service acting for a client passes the client id on (`client_metadata`), so the service that
owns the resource makes the check; ownership never changes, so a caller may remember a verdict.
"""

from __future__ import annotations

import hashlib

import grpc

from services.runtime.callers import CLIENT_ID_METADATA
from services.runtime.errors import NotFound

# The owner of what internal calls create: no client sees it.
UNOWNED = ""
# The same bound callers.client_id() puts on the header's value.
_MAX_CLIENT_ID = 128


def caller_client(context: grpc.aio.ServicerContext) -> str | None:
    """The calling client's id, or None for an internal call."""
    for key, value in context.invocation_metadata() or ():
        if key == CLIENT_ID_METADATA and value:
            return str(value)[:_MAX_CLIENT_ID]
    return None


def owner_for_new(caller: str | None) -> str:
    """The owner of what the caller creates."""
    return UNOWNED if caller is None else caller


def may_touch(caller: str | None, owner: str) -> bool:
    return caller is None or caller == owner


def require_owner(caller: str | None, owner: str, not_found: str) -> None:
    """NOT_FOUND with `not_found` (the message an unknown id gets) unless the caller may touch
    what `owner` owns."""
    if not may_touch(caller, owner):
        raise NotFound(not_found)


def client_metadata(caller: str | None) -> tuple[tuple[str, str], ...] | None:
    """Metadata for a call made on behalf of `caller` (None: an internal call)."""
    return None if caller is None else ((CLIENT_ID_METADATA, caller),)


def scoped_digest(digest: bytes, caller: str | None) -> bytes:
    """A request digest bound to its caller, for request logs keyed by request_id alone: another
    client reusing the id is a different request (ALREADY_EXISTS), never handed the first one's
    answer. Internal calls keep the plain digest, as before clients were told apart."""
    if caller is None:
        return digest
    return hashlib.sha256(b"client\0" + caller.encode() + b"\0" + digest).digest()


# Cached copies carry their owner, so a cache hit is checked like a database read.


def with_owner(owner: str, payload: bytes) -> bytes:
    raw = owner.encode()
    return len(raw).to_bytes(2, "big") + raw + payload


def split_owner(data: bytes) -> tuple[str, bytes]:
    size = int.from_bytes(data[:2], "big")
    return data[2 : 2 + size].decode(), data[2 + size :]
