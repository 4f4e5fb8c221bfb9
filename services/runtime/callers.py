"""Who is calling, and what they may do.

Clients reach the services only through the front door (Envoy), whose external authorization
(services/auth) checks the caller's API key and then SETS, overwriting anything the client
sent: `x-chat4all-client-id` (the client the key acts as; it scopes idempotency keys and data),
`x-chat4all-scopes` (comma-separated scope names: "send,read") and `x-chat4all-key-id`. The
key itself never reaches a service.

A call without `x-chat4all-client-id` comes from inside the mesh (a service calling another,
an operator's tool): it shares the "anonymous" client and is not limited by scopes.
"""

from __future__ import annotations

import grpc

from services.runtime.errors import PermissionDenied

CLIENT_ID_METADATA = "x-chat4all-client-id"
SCOPES_METADATA = "x-chat4all-scopes"
KEY_ID_METADATA = "x-chat4all-key-id"
ANONYMOUS = "anonymous"


def _metadata(context: grpc.aio.ServicerContext, name: str) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == name and value:
            return str(value)
    return None


def client_id(context: grpc.aio.ServicerContext) -> str:
    value = _metadata(context, CLIENT_ID_METADATA)
    return value[:128] if value else ANONYMOUS


def is_internal(context: grpc.aio.ServicerContext) -> bool:
    """True for a call from inside the mesh: the front door names the client of every call it
    lets through."""
    return _metadata(context, CLIENT_ID_METADATA) is None


def scopes(context: grpc.aio.ServicerContext) -> frozenset[str]:
    """The scopes of the caller's key, as the front door named them ("send", "read", "admin")."""
    value = _metadata(context, SCOPES_METADATA) or ""
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def require_scope(context: grpc.aio.ServicerContext, scope: str) -> None:
    """PERMISSION_DENIED unless the caller's key has `scope`; internal calls pass."""
    if not is_internal(context) and scope not in scopes(context):
        raise PermissionDenied(f"this call needs an API key with the {scope} scope")
