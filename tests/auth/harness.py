"""The auth service started in-process on a test's own database and Redis key prefix, and the
calls a test makes to it: ApiKeyService as an admin client would (through the front door's
headers), and Check exactly as Envoy sends it."""

from __future__ import annotations

import contextlib
import json
import uuid
import warnings
from collections.abc import AsyncIterator
from typing import Any

import grpc
import redis.asyncio as redis
from chat4all.auth.v1 import message_pb2 as pb, request_response_pb2 as rr, service_pb2_grpc

from services.auth import servicer
from services.auth.ext_authz import CheckRequest, CheckResponse

with warnings.catch_warnings():  # envoy-data-plane's classes use a pydantic idiom pydantic warns about
    warnings.simplefilter("ignore", DeprecationWarning)
    from envoy_data_plane.envoy.service.auth import v3
from services.auth.settings import AuthSettings
from services.runtime.app import Runtime
from services.runtime.config import load_settings
from tests.services.servers import serving

CHECK = "/envoy.service.auth.v3.Authorization/Check"
SEND = "/chat4all.messaging.v1.MessageService/SendMessage"
LIST_MESSAGES = "/chat4all.messaging.v1.MessageService/ListMessages"
# What the services see of a call: from inside the mesh (no client named), or from a client's
# key through the front door.
INTERNAL: tuple[tuple[str, str], ...] = ()


def admin_of(client_id: str) -> tuple[tuple[str, str], ...]:
    return (("x-chat4all-client-id", client_id), ("x-chat4all-scopes", "admin,read,send"))


ADMIN = admin_of("ops")


@contextlib.asynccontextmanager
async def redis_prefix() -> AsyncIterator[str]:
    """A Redis key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"c4a-test-auth-{uuid.uuid4().hex[:12]}"
    client = redis.from_url(load_settings(AuthSettings).redis_url)
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def auth_service(postgres_dsn: str, prefix: str, **settings: Any):
    """The auth service; yields (runtime, channel)."""
    return serving(servicer, AuthSettings, postgres_dsn, auth_redis_prefix=prefix, **settings)


class Auth:
    """One auth replica as the tests talk to it."""

    def __init__(self, runtime: Runtime, channel: grpc.aio.Channel) -> None:
        self.runtime, self.channel = runtime, channel
        self.keys = service_pb2_grpc.ApiKeyServiceStub(channel)
        self._check = channel.unary_unary(CHECK, request_serializer=bytes, response_deserializer=CheckResponse.parse)

    async def create_key(
        self, client_id: str, *scopes: int, requests_per_second: int = 0, metadata=INTERNAL
    ) -> rr.CreateApiKeyResponse:
        request = rr.CreateApiKeyRequest(
            request_id=str(uuid.uuid4()),
            api_key=pb.ApiKey(client_id=client_id, scopes=scopes, requests_per_second=requests_per_second),
        )
        return await self.keys.CreateApiKey(request, metadata=metadata)

    async def check(self, path: str, headers: dict[str, str] | None = None, *, rest: bool = False) -> CheckResponse:
        """Check as Envoy asks it (headers and all, as a real Envoy 1.40 sent them) for a gRPC
        call, or for a REST call after the transcoder turned it into one (`rest`)."""
        all_headers = {
            ":authority": "127.0.0.1:18080",
            ":method": "POST",
            ":path": path,
            ":scheme": "http",
            "content-type": "application/grpc",
            "te": "trailers",
            "x-request-id": str(uuid.uuid4()),
            **(headers or {}),
        }
        if rest:
            all_headers |= {"x-envoy-original-path": "/v1/conversations/c1/messages", "x-envoy-original-method": "POST"}
        http = v3.AttributeContextHttpRequest(
            id="1", method="POST", headers=all_headers, path=path, host="127.0.0.1:18080", scheme="http", protocol="HTTP/2"
        )
        return await self._check(CheckRequest(attributes=v3.AttributeContext(request=v3.AttributeContextRequest(http=http))))

    async def check_with_key(self, path: str, secret: str, *, rest: bool = False) -> CheckResponse:
        return await self.check(path, {"authorization": f"Bearer {secret}"}, rest=rest)


@contextlib.asynccontextmanager
async def replica(postgres_dsn: str, prefix: str, **settings: Any) -> AsyncIterator[Auth]:
    async with auth_service(postgres_dsn, prefix, **settings) as (runtime, channel):
        yield Auth(runtime, channel)


# Reading Check answers ------------------------------------------------------------------------


def http_status(response: CheckResponse) -> int:
    """200 when allowed, else the denial's HTTP status."""
    if response.ok_response is not None:
        assert response.status is None or response.status.code == 0
        return 200
    assert response.denied_response is not None and response.denied_response.status is not None
    return int(response.denied_response.status.code)


def denied_headers(response: CheckResponse) -> dict[str, str]:
    assert response.denied_response is not None
    return {h.header.key: h.header.value for h in response.denied_response.headers}


def denied_body(response: CheckResponse) -> dict[str, Any]:
    """A REST call's error body."""
    assert response.denied_response is not None
    return json.loads(response.denied_response.body)


def denied_message(response: CheckResponse) -> str:
    """A gRPC call's error message (Envoy sends the body as grpc-message)."""
    assert response.denied_response is not None
    return response.denied_response.body


def upstream_headers(response: CheckResponse) -> dict[str, str]:
    """The headers an allowed request goes on with (set, overwriting the client's)."""
    assert response.ok_response is not None
    return {h.header.key: h.header.value for h in response.ok_response.headers}


async def rpc_error(call) -> grpc.aio.AioRpcError:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError("the call succeeded")
