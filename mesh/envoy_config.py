"""Envoy's bootstrap config for the front door, built as a plain dict (written out as JSON).

Plain dicts rather than envoy-data-plane's typed classes: they read like Envoy's own docs, and
the authority on whether a config is right is the Envoy binary we run, which checks every
generated config (`envoy --mode validate`, tests/mesh/test_envoy_config.py).

One listener serves REST (JSON transcoded to gRPC by grpc_json_transcoder) and native gRPC.
The transcoder rewrites a REST call's :path to its gRPC path and clears the route cache, so both
kinds meet the same routes: one per public RPC, by exact gRPC path. Internal RPCs (no
required_scope) have no route, and anything without a route gets a JSON 404.

Filters, in order: the buffer filter (a request body over the limit gets 413: file bytes never
come here, they go straight to S3); the transcoder; ext_authz (optional: the auth service checks
the API key of every call by its gRPC path, and SETS x-chat4all-client-id / -scopes / -key-id);
the router. Client-sent `x-chat4all-*` headers are removed before any filter runs (HCM early
header mutation), so only the auth service can name a caller, on every route.

Platform webhooks (Meta's, Telegram's) are routed by exact path to their connector, GET and
POST only, without the transcoder or ext_authz: the connector checks the platform's signature.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mesh.rpcs import Rpc, rpcs_of, services_in

__all__ = ["Endpoint", "Limits", "Webhook", "build", "services_in"]

MiB = 1024 * 1024
# Headers only the front door sets (ext_authz on allow); whatever a client sends is dropped first.
TRUSTED_HEADER_PREFIX = "x-chat4all-"
# RPCs that take longer than a unary call's usual bound, and why.
LONG_RUNNING_S = {
    # Reads the whole assembled file (up to 2 GiB) back from S3 to check its size and SHA-256.
    "/chat4all.files.v1.FileService/CompleteUpload": 600,
}
REFLECTION_SERVICES = ("grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection")
ADMIN_HOST = "127.0.0.1"  # whatever the listener's host: the admin API can stop Envoy

# Local replies (Envoy's own answers: no route, body too large, method not allowed...) to REST
# clients become JSON like the transcoder's converted gRPC errors: {"code", "message"}, with the
# gRPC code a gRPC client would have got.
_GRPC_CODE_OF_HTTP = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    405: 12,  # UNIMPLEMENTED
    408: 4,  # DEADLINE_EXCEEDED
    413: 8,  # RESOURCE_EXHAUSTED, as gRPC says of a message over its limit
    429: 8,  # RESOURCE_EXHAUSTED
    500: 13,  # INTERNAL
    502: 14,  # UNAVAILABLE
    503: 14,  # UNAVAILABLE
    504: 4,  # DEADLINE_EXCEEDED
}
_UNKNOWN = 2


@dataclass(frozen=True)
class Endpoint:
    """One address Envoy forwards to (a cluster of one host)."""

    cluster: str
    host: str
    port: int
    http2: bool = True  # gRPC needs HTTP/2; the connectors' webhook servers speak HTTP/1.1


@dataclass(frozen=True)
class Webhook:
    """A platform's webhook path and the connector serving it."""

    path: str  # "/whatsapp/webhook"
    endpoint: Endpoint


@dataclass(frozen=True)
class Limits:
    # API requests, REST or gRPC: a message is at most 4096 characters; files never pass here.
    max_request_bytes: int = MiB
    # Meta's and Telegram's webhook payloads are small: media come by id or URL.
    webhook_max_request_bytes: int = MiB
    unary_timeout_s: float = 15
    webhook_timeout_s: float = 15
    # Event streams send nothing while nothing happens; a client resumes a cut stream from its
    # last event, so an hour of silence may end one.
    stream_idle_timeout_s: float = 3600
    read_retries: int = 2
    read_per_try_timeout_s: float = 5
    authz_timeout_s: float = 0.5


def _typed(type_name: str, **fields: object) -> dict[str, object]:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _address(host: str, port: int) -> dict[str, object]:
    return {"socket_address": {"address": host, "port_value": port}}


def _cluster(endpoint: Endpoint, connect_timeout: str = "1s") -> dict[str, object]:
    cluster: dict[str, object] = {
        "name": endpoint.cluster,
        "type": "STATIC",
        "connect_timeout": connect_timeout,
        "load_assignment": {
            "cluster_name": endpoint.cluster,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(endpoint.host, endpoint.port)}}]}],
        },
    }
    if endpoint.http2:  # Envoy would otherwise speak HTTP/1.1 upstream
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": _typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config={"http2_protocol_options": {}},
            )
        }
    return cluster


# Filters ------------------------------------------------------------------------------------

TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
EXT_AUTHZ = "envoy.filters.http.ext_authz"
BUFFER = "envoy.filters.http.buffer"


def _transcoder(descriptor_set: Path, services: list[str], limits: Limits) -> dict[str, object]:
    return {
        "name": TRANSCODER,
        "typed_config": _typed(
            "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            proto_descriptor=str(descriptor_set),
            services=services,
            convert_grpc_status=True,  # gRPC errors become HTTP codes with a JSON body
            # Without it an unknown REST path reaches a gRPC server and comes back as a 503.
            # A query parameter no field takes is refused (400), not quietly ignored.
            request_validation_options={"reject_unknown_method": True, "reject_unknown_query_parameters": True},
            max_request_body_size=limits.max_request_bytes,  # 413 above
            print_options={
                "add_whitespace": True,
                "always_print_primitive_fields": True,
                "always_print_enums_as_ints": False,
                "preserve_proto_field_names": False,
            },
        ),
    }


def _ext_authz(cluster: str, limits: Limits) -> dict[str, object]:
    # After the transcoder: the auth service sees every call, REST or gRPC, by its gRPC path.
    return {
        "name": EXT_AUTHZ,
        "typed_config": _typed(
            "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            transport_api_version="V3",
            grpc_service={"envoy_grpc": {"cluster_name": cluster}, "timeout": _seconds(limits.authz_timeout_s)},
            failure_mode_allow=False,  # no answer from the auth service: refused
            status_on_error={"code": "ServiceUnavailable"},  # ... as 503 (UNAVAILABLE, retryable), not 403
            include_peer_certificate=False,
        ),
    }


def _buffer(max_request_bytes: int) -> dict[str, object]:
    return {
        "name": BUFFER,
        "typed_config": _typed("envoy.extensions.filters.http.buffer.v3.Buffer", max_request_bytes=max_request_bytes),
    }


_ROUTER = {"name": "envoy.filters.http.router", "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router")}


# Per-route filter settings ------------------------------------------------------------------

def _no_authz() -> dict[str, object]:
    return {EXT_AUTHZ: _typed("envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute", disabled=True)}


def _disabled(name: str) -> dict[str, object]:
    return {name: _typed("envoy.config.route.v3.FilterConfig", disabled=True)}


def _buffer_limit(max_request_bytes: int) -> dict[str, object]:
    return {BUFFER: _typed("envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
                           buffer={"max_request_bytes": max_request_bytes})}


# Routes ------------------------------------------------------------------------------------

def _rpc_route(rpc: Rpc, endpoint: Endpoint, limits: Limits) -> dict[str, object]:
    action: dict[str, object] = {"cluster": endpoint.cluster}
    if rpc.streaming:
        # No deadline at the door (a client's grpc-timeout still applies), and a long silence.
        action.update(timeout="0s", idle_timeout=_seconds(limits.stream_idle_timeout_s),
                      max_stream_duration={"grpc_timeout_header_max": "0s"})
    else:
        timeout = _seconds(LONG_RUNNING_S.get(rpc.path, limits.unary_timeout_s))
        # A client's shorter grpc-timeout wins; a longer one is cut to ours.
        action.update(timeout=timeout, max_stream_duration={"grpc_timeout_header_max": timeout})
    if rpc.read:  # retried only where a repeat changes nothing
        action["retry_policy"] = {
            "retry_on": "unavailable,connect-failure,reset",
            "num_retries": limits.read_retries,
            "per_try_timeout": _seconds(limits.read_per_try_timeout_s),
        }
    return {"name": rpc.path, "match": {"path": rpc.path}, "route": action}


def _webhook_routes(webhook: Webhook, limits: Limits) -> list[dict[str, object]]:
    per_filter = {**_disabled(TRANSCODER), **_no_authz(), **_buffer_limit(limits.webhook_max_request_bytes)}
    return [
        {
            "name": f"webhook {webhook.path}",
            # GET is Meta's subscription handshake, POST the events; the connector checks the signature.
            "match": {"path": webhook.path, "headers": [
                {"name": ":method", "string_match": {"safe_regex": {"regex": "GET|POST"}}}]},
            "route": {"cluster": webhook.endpoint.cluster, "timeout": _seconds(limits.webhook_timeout_s)},
            "request_headers_to_remove": ["authorization"],  # a client's API key is not the connector's business
            "typed_per_filter_config": per_filter,
        },
        {
            "name": f"webhook {webhook.path}: other methods",
            "match": {"path": webhook.path},
            "direct_response": {"status": 405, "body": {"inline_string": "method not allowed"}},
            "response_headers_to_add": [{"header": {"key": "allow", "value": "GET, POST"},
                                         "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
            "typed_per_filter_config": per_filter,
        },
    ]


def _reflection_routes(endpoint: Endpoint) -> list[dict[str, object]]:
    # Any valid key may read the contract (the auth service lets every key call reflection).
    # A bidirectional stream: not buffered, no deadline.
    return [
        {
            "name": f"/{service}/",
            "match": {"prefix": f"/{service}/"},
            "route": {"cluster": endpoint.cluster, "timeout": "0s"},
            "typed_per_filter_config": _disabled(BUFFER),
        }
        for service in REFLECTION_SERVICES
    ]


_NO_SUCH_METHOD: dict[str, object] = {
    "name": "no such method",
    "match": {"prefix": "/"},
    # Before transcoding, a REST call's path matches only here; ext_authz (which runs after the
    # transcoder re-matched the route on the gRPC path) is off only for calls that stay here.
    "direct_response": {"status": 404, "body": {"inline_string": "no such method"}},
    "typed_per_filter_config": _no_authz(),
}


def _local_replies() -> dict[str, object]:
    """Envoy's own answers to REST clients as JSON; gRPC clients keep grpc-status/grpc-message."""
    # A gRPC client's request: gRPC content and no REST path before it (the transcoder records
    # a REST call's in x-envoy-original-path, which clients cannot send: removed early).
    grpc_client = {"and_filter": {"filters": [
        {"header_filter": {"header": {"name": "content-type", "string_match": {"prefix": "application/grpc"}}}},
        {"header_filter": {"header": {"name": "x-envoy-original-path", "present_match": False}}},
    ]}}

    unauthorized = {"response_flag_filter": {"flags": ["UAEX"]}}  # by ext_authz

    def status_is(op: str, status: int) -> dict[str, object]:
        return {"status_code_filter": {"comparison": {"op": op, "value": {
            "default_value": status, "runtime_key": f"chat4all.local_reply.{op.lower()}_{status}"}}}}

    def json_body(code: int) -> dict[str, object]:
        return {"json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%"}}

    mappers: list[dict[str, object]] = [
        # A message over the limit is RESOURCE_EXHAUSTED in gRPC's own terms (Envoy would say UNKNOWN).
        {"filter": {"and_filter": {"filters": [grpc_client, status_is("EQ", 413)]}},
         "headers_to_add": [{"header": {"key": "grpc-status", "value": "8"},
                             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]},
        {"filter": grpc_client},  # first match wins: the rest left as they are
        # No answer from the auth service (Envoy's own 503, empty): JSON like the rest.
        {"filter": {"and_filter": {"filters": [unauthorized, {"extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": _typed("envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                                   expression="!('grpc-status' in response.headers)"),
        }}]}}, "body_format_override": {"json_format": {
            "code": 14, "message": "the API key cannot be checked right now; retry"}}},
        # The auth service's refusals: it writes REST bodies as JSON already (and gRPC status).
        {"filter": unauthorized},
    ]
    mappers += [{"filter": status_is("EQ", status), "body_format_override": json_body(code)}
                for status, code in _GRPC_CODE_OF_HTTP.items()]
    mappers.append({"filter": status_is("GE", 400), "body_format_override": json_body(_UNKNOWN)})
    return {"mappers": mappers}


def _access_log() -> list[dict[str, object]]:
    """One JSON line per request on stdout (var/log/envoy.log). Never the Authorization header,
    nor query strings (Meta's handshake carries hub.verify_token there), nor bodies."""
    fields = {
        "start_time": "%START_TIME%",
        "method": "%REQ(X-ENVOY-ORIGINAL-METHOD?:METHOD)%",  # a REST call's own
        # The path the client asked for (a REST call's, before transcoding), without its query.
        "path": "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH):512%",
        "route": "%ROUTE_NAME%",  # the gRPC path of the RPC, for REST and gRPC alike
        "protocol": "%PROTOCOL%",
        "status": "%RESPONSE_CODE%",
        "grpc_status": "%GRPC_STATUS_NUMBER%",
        "response_flags": "%RESPONSE_FLAGS%",
        "details": "%RESPONSE_CODE_DETAILS%",  # e.g. ext_authz_denied, request_payload_too_large
        "duration_ms": "%DURATION%",
        "upstream_ms": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
        "bytes_received": "%BYTES_RECEIVED%",
        "bytes_sent": "%BYTES_SENT%",
        "upstream_cluster": "%UPSTREAM_CLUSTER%",
        "request_id": "%REQ(X-REQUEST-ID)%",
        "traceparent": "%REQ(TRACEPARENT)%",
        "client_id": "%REQ(X-CHAT4ALL-CLIENT-ID):128%",  # set by ext_authz; clients' own are dropped
        "key_id": "%REQ(X-CHAT4ALL-KEY-ID):128%",
        "remote_address": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
        "user_agent": "%REQ(USER-AGENT):256%",
    }
    return [{
        "name": "envoy.access_loggers.stdout",
        "typed_config": _typed(
            "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            log_format={
                "json_format": fields,
                "formatters": [{
                    "name": "envoy.formatter.req_without_query",
                    "typed_config": _typed("envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery"),
                }],
            },
        ),
    }]


def build(
    *,
    host: str,
    port: int,
    admin_port: int,
    descriptor_set: Path,
    services: Mapping[str, Endpoint],
    webhooks: Iterable[Webhook] = (),
    authz: Endpoint | None = None,
    reflection: Endpoint | None = None,
    limits: Limits = Limits(),
    access_log: bool = True,
    max_connections: int = 10_000,
) -> dict[str, object]:
    """The whole bootstrap config.

    `services` maps each routed gRPC service (full name) to where it runs; its public RPCs get a
    route each. `authz`, when given, is the auth service's Authorization endpoint: every call
    to a public RPC is checked there first. `reflection` serves gRPC server reflection for all of
    them (mesh/reflection.py).
    """
    webhooks = list(webhooks)
    rpcs = [rpc for rpc in rpcs_of(descriptor_set, services) if rpc.public]
    routes: list[dict[str, object]] = []
    for webhook in webhooks:
        routes += _webhook_routes(webhook, limits)
    if reflection is not None:
        routes += _reflection_routes(reflection)
    routes += [_rpc_route(rpc, services[rpc.service], limits) for rpc in rpcs]
    routes.append(_NO_SUCH_METHOD)

    # The buffer filter first: it holds the body as the client sent it until the end, and
    # refuses it at the limit; a later one could be handed a body that was held for it (while
    # ext_authz waits on the auth service) in one piece, which it would not count.
    http_filters = [_buffer(limits.max_request_bytes),
                    _transcoder(descriptor_set, sorted({rpc.service for rpc in rpcs}), limits)]
    if authz is not None:
        http_filters.append(_ext_authz(authz.cluster, limits))
    http_filters.append(_ROUTER)

    manager: dict[str, object] = {
        "stat_prefix": "front_door",
        "codec_type": "AUTO",  # HTTP/1.1 for REST clients, h2c for gRPC clients
        "use_remote_address": True,  # the edge: x-forwarded-for from clients is not trusted
        # Envoy makes each request's x-request-id (services log it; clients' own are replaced)
        # and returns it, so a client can name a request when it asks what went wrong.
        "always_set_request_id_in_response": True,
        "normalize_path": True,
        "merge_slashes": True,
        "request_headers_timeout": "10s",
        "common_http_protocol_options": {"headers_with_underscores_action": "DROP_HEADER"},
        "http2_protocol_options": {"max_concurrent_streams": 100, "initial_stream_window_size": 65536,
                                   "initial_connection_window_size": 1048576},
        # Before route matching and every filter: only ext_authz may name the caller, and only
        # the transcoder says what a REST call's path was.
        "early_header_mutation_extensions": [{
            "name": "envoy.http.early_header_mutation.header_mutation",
            "typed_config": _typed(
                "envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
                mutations=[
                    {"remove_on_match": {"key_matcher": {"prefix": TRUSTED_HEADER_PREFIX}}},
                    {"remove": "x-envoy-original-path"},
                    {"remove": "x-envoy-original-method"},
                ],
            ),
        }],
        "route_config": {
            "name": "chat4all",
            "virtual_hosts": [{"name": "chat4all", "domains": ["*"], "routes": routes}],
        },
        "http_filters": http_filters,
        "local_reply_config": _local_replies(),
    }
    if access_log:
        manager["access_log"] = _access_log()

    endpoints = [*services.values(), *(webhook.endpoint for webhook in webhooks)]
    endpoints += [e for e in (reflection,) if e is not None]
    clusters: dict[str, dict[str, object]] = {}
    for endpoint in endpoints:
        clusters.setdefault(endpoint.cluster, _cluster(endpoint))
    if authz is not None:
        clusters[authz.cluster] = _cluster(authz, connect_timeout="0.25s")
    return {
        "admin": {"address": _address(ADMIN_HOST, admin_port)},
        # A cap on open client connections (Envoy warns at start when there is none).
        "overload_manager": {"resource_monitors": [{
            "name": "envoy.resource_monitors.global_downstream_max_connections",
            "typed_config": _typed(
                "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                max_active_downstream_connections=max_connections,
            ),
        }]},
        "static_resources": {
            "listeners": [{
                "name": "front_door",
                "address": _address(host, port),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": _typed(
                        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        **manager,
                    ),
                }]}],
            }],
            "clusters": list(clusters.values()),
        },
    }
