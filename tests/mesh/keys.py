"""API keys for tests that call through the front door of a running platform."""

from __future__ import annotations

import uuid
from typing import Any

import grpc

AUTH_MODULE = "services.auth"


def auth_app(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The platform's auth app (its Check is Envoy's ext_authz), if it has one."""
    return next((app for app in raw["apps"].values() if app.get("module") == AUTH_MODULE), None)


def api_key(raw: dict[str, Any], client_id: str, scopes: tuple[str, ...] = ("send", "read", "admin")) -> str | None:
    """A new key's secret, made by calling the auth app directly (an internal call, as
    `python -m services.auth create-key` makes the first key); None when the platform checks
    no keys."""
    app = auth_app(raw)
    if app is None:
        return None
    from chat4all.auth.v1 import message_pb2, request_response_pb2, service_pb2_grpc

    by_name = {"send": message_pb2.SCOPE_SEND, "read": message_pb2.SCOPE_READ, "admin": message_pb2.SCOPE_ADMIN}
    request = request_response_pb2.CreateApiKeyRequest(request_id=str(uuid.uuid4()), api_key=message_pb2.ApiKey(
        client_id=client_id, display_name="front door tests", scopes=[by_name[name] for name in scopes]))
    with grpc.insecure_channel(f"{raw['platform']['host']}:{app['grpc_port']}") as channel:
        return service_pb2_grpc.ApiKeyServiceStub(channel).CreateApiKey(request, timeout=30).secret
