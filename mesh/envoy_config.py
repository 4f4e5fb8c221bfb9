"""Envoy's bootstrap config for the front door, built as a plain dict (written out as JSON).

One listener serves both REST (JSON transcoded to gRPC by grpc_json_transcoder) and native gRPC;
after transcoding, requests carry their gRPC path, so one route per service by path prefix
`/<package>.<Service>/` sends both kinds to that service's cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2


@dataclass(frozen=True)
class Upstream:
    """Where the requests for one path prefix go."""

    cluster: str
    prefix: str  # "/chat4all.messaging.v1.MessageService/"
    host: str
    port: int


def services_in(descriptor_set: Path, packages: Iterable[str]) -> list[str]:
    """Full names of the gRPC services that `packages` define in a FileDescriptorSet."""
    wanted = set(packages)
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file
    return sorted({f"{f.package}.{s.name}" for f in files if f.package in wanted for s in f.service})


def service_upstreams(services: Iterable[str], host: str, port: int) -> list[Upstream]:
    return [Upstream(cluster=name, prefix=f"/{name}/", host=host, port=port) for name in services]


def _typed(type_name: str, **fields: object) -> dict[str, object]:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def _address(host: str, port: int) -> dict[str, object]:
    return {"socket_address": {"address": host, "port_value": port}}


def _cluster(upstream: Upstream) -> dict[str, object]:
    return {
        "name": upstream.cluster,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": upstream.cluster,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(upstream.host, upstream.port)}}]}],
        },
        # gRPC needs HTTP/2 to the upstream; Envoy would otherwise speak HTTP/1.1.
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": _typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config={"http2_protocol_options": {}},
            )
        },
    }


def _transcoder(descriptor_set: Path, services: list[str]) -> dict[str, object]:
    return {
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": _typed(
            "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            proto_descriptor=str(descriptor_set),
            services=services,
            convert_grpc_status=True,  # gRPC errors become HTTP codes with a JSON body
            # Without it an unknown REST path reaches a gRPC server and comes back as a 503.
            request_validation_options={"reject_unknown_method": True},
            print_options={
                "add_whitespace": True,
                "always_print_primitive_fields": True,
                "always_print_enums_as_ints": False,
                "preserve_proto_field_names": False,
            },
        ),
    }


def build(
    *,
    host: str,
    port: int,
    admin_port: int,
    upstreams: list[Upstream],
    descriptor_set: Path | None,
    transcoded_services: list[str],
    access_log: bool = True,
    max_connections: int = 10_000,
) -> dict[str, object]:
    """The whole bootstrap config. Without a descriptor set, gRPC passes through untranscoded."""
    http_filters: list[dict[str, object]] = []
    if descriptor_set is not None and transcoded_services:
        http_filters.append(_transcoder(descriptor_set, transcoded_services))
    http_filters.append({
        "name": "envoy.filters.http.router",
        "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router"),
    })
    routes = [
        {
            "match": {"prefix": upstream.prefix},
            # No route timeout: streaming RPCs may stay open; a client's grpc-timeout still applies.
            "route": {"cluster": upstream.cluster, "timeout": "0s",
                      "max_stream_duration": {"grpc_timeout_header_max": "0s"}},
        }
        for upstream in upstreams
    ]
    manager: dict[str, object] = {
        "stat_prefix": "front_door",
        "codec_type": "AUTO",  # HTTP/1.1 for REST clients, h2c for gRPC clients
        "route_config": {
            "name": "chat4all",
            "virtual_hosts": [{"name": "chat4all", "domains": ["*"], "routes": routes}],
        },
        "http_filters": http_filters,
    }
    if access_log:
        manager["access_log"] = [{
            "name": "envoy.access_loggers.stdout",
            "typed_config": _typed("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"),
        }]
    clusters: dict[str, dict[str, object]] = {}
    for upstream in upstreams:
        clusters.setdefault(upstream.cluster, _cluster(upstream))
    return {
        "admin": {"address": _address(host, admin_port)},
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
