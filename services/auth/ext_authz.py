"""Envoy's external authorization API (`envoy.service.auth.v3.Authorization/Check`) in front of
the front door's decision.

Envoy asks before it routes each client request. It runs ext_authz after the gRPC-JSON
transcoder, so a REST call already carries its gRPC path (`/chat4all.messaging.v1.
MessageService/SendMessage`). The messages are Envoy's own (envoy-data-plane's betterproto2
classes); grpcio carries them as raw bytes through a generic handler.

Allowed: the request goes on with `x-chat4all-client-id`, `x-chat4all-scopes` and
`x-chat4all-key-id` SET (whatever the client sent under those names is overwritten) and without
`authorization` / `x-api-key`, so no service ever sees, or logs, a secret.
Denied: the HTTP status (401, 403, 429, 503) and `grpc-status` with the gRPC code. Envoy answers
a gRPC client itself (trailers-only): its status comes from our `grpc-status` (without it Envoy
derives one from the HTTP status, and 429 would reach gRPC clients as UNAVAILABLE), its message
from our body, so a gRPC client gets the plain message. A REST client gets a JSON body shaped like
the transcoder's REST errors, `{"code": <gRPC code>, "message": "...", "details": []}`.
"""

from __future__ import annotations

import base64
import json
import logging
import warnings

import grpc

# envoy-data-plane's generated classes use a pydantic idiom pydantic now warns about at import.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from envoy_data_plane.envoy.config.core.v3 import HeaderValue, HeaderValueOption, HeaderValueOptionHeaderAppendAction
    from envoy_data_plane.envoy.service.auth.v3 import CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse
    from envoy_data_plane.envoy.type.v3 import HttpStatus, StatusCode
    from envoy_data_plane.google.rpc import Status

from services.auth import scopes
from services.auth.front_door import Decision, FrontDoor, Outcome
from services.runtime.status_details import DETAILS_TRAILER, status_trailers
from services.runtime.callers import CLIENT_ID_METADATA, KEY_ID_METADATA, SCOPES_METADATA

log = logging.getLogger("chat4all.auth")

SERVICE_NAME = "envoy.service.auth.v3.Authorization"
CREDENTIAL_HEADERS = ("authorization", "x-api-key")

# Outcome -> (HTTP status, gRPC code).
_DENIALS = {
    Outcome.UNAUTHENTICATED: (StatusCode.Unauthorized, grpc.StatusCode.UNAUTHENTICATED),
    Outcome.FORBIDDEN: (StatusCode.Forbidden, grpc.StatusCode.PERMISSION_DENIED),
    Outcome.THROTTLED: (StatusCode.TooManyRequests, grpc.StatusCode.RESOURCE_EXHAUSTED),
    Outcome.UNAVAILABLE: (StatusCode.ServiceUnavailable, grpc.StatusCode.UNAVAILABLE),
}
_SET = HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD


def presented_key(headers: dict[str, str]) -> str | None:
    """The secret the client sent: `Authorization: Bearer <secret>`, else `x-api-key: <secret>`.
    Another authorization scheme counts as a key that is not valid ("" is not None)."""
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, secret = authorization.strip().partition(" ")
        return secret.strip() if scheme.lower() == "bearer" else ""
    api_key = headers.get("x-api-key")
    return api_key.strip() if api_key is not None else None


def request_headers(request: CheckRequest) -> tuple[str, dict[str, str]]:
    """The request's path and headers (lower-case names), from either header encoding Envoy
    uses (`headers`, or `header_map` when encode_raw_headers is on)."""
    http = request.attributes.request.http if request.attributes and request.attributes.request else None
    if http is None:
        return "", {}
    headers = {name.lower(): value for name, value in http.headers.items()}
    if http.header_map is not None:
        for header in http.header_map.headers:
            headers[header.key.lower()] = header.value or header.raw_value.decode("utf-8", "replace")
    return http.path or headers.get(":path", ""), headers


def is_rest(headers: dict[str, str]) -> bool:
    """A REST call, transcoded: the transcoder keeps the REST path in x-envoy-original-path.
    (A gRPC client sending that header only gets its errors as JSON.)"""
    return "x-envoy-original-path" in headers or not headers.get("content-type", "").startswith("application/grpc")


def response(decision: Decision, rest: bool = True) -> CheckResponse:
    if decision.outcome is Outcome.ALLOWED:
        key = decision.key
        assert key is not None
        caller = {CLIENT_ID_METADATA: key.client_id, SCOPES_METADATA: scopes.names(key.scopes), KEY_ID_METADATA: key.key_id}
        return CheckResponse(
            status=Status(code=grpc.StatusCode.OK.value[0]),
            ok_response=OkHttpResponse(
                headers=[_header(name, value) for name, value in caller.items()],
                headers_to_remove=list(CREDENTIAL_HEADERS),
            ),
        )
    http_status, code = _DENIALS[decision.outcome]
    headers = {"grpc-status": str(code.value[0]), "grpc-message": _grpc_message(decision.message)}
    if decision.outcome is Outcome.UNAUTHENTICATED:
        headers["www-authenticate"] = 'Bearer realm="chat4all"'
    details: list[dict[str, str]] = []
    if decision.outcome is Outcome.THROTTLED:
        headers["retry-after"] = str(decision.retry_after_seconds)
        # RetryInfo, as every Chat4All server gives it to gRPC clients and the transcoder renders
        # it for REST clients.
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{decision.retry_after_seconds}s"})
        if not rest:
            [(_, packed)] = status_trailers(code, decision.message, decision.retry_after_seconds)
            headers[DETAILS_TRAILER] = base64.b64encode(packed).decode()  # a binary header
    body = decision.message
    if rest:
        headers["content-type"] = "application/json"
        body = json.dumps({"code": code.value[0], "message": decision.message, "details": details})
    return CheckResponse(
        status=Status(code=code.value[0], message=decision.message),
        denied_response=DeniedHttpResponse(
            status=HttpStatus(code=http_status),
            headers=[_header(name, value) for name, value in headers.items()],
            body=body,
        ),
    )


def _grpc_message(message: str) -> str:
    """Percent-encoded as the gRPC spec asks: printable ASCII but '%' as is, the rest %XX."""
    return "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}" for b in message.encode())


def _header(name: str, value: str) -> HeaderValueOption:
    return HeaderValueOption(header=HeaderValue(key=name, value=value), append_action=_SET)


class Authorization:
    """The Check RPC."""

    def __init__(self, front_door: FrontDoor) -> None:
        self.front_door = front_door

    async def check(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            request = CheckRequest.parse(raw)
        except Exception as error:  # noqa: BLE001 - an unreadable request is refused, not let in
            log.warning("unreadable CheckRequest; refusing", extra={"error": type(error).__name__})
            return bytes(response(Decision(Outcome.UNAUTHENTICATED, "the request could not be read")))
        path, headers = request_headers(request)
        decision = await self.front_door.decide(path, presented_key(headers))
        return bytes(response(decision, rest=is_rest(headers)))

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME, {"Check": grpc.unary_unary_rpc_method_handler(self.check)}
        )
