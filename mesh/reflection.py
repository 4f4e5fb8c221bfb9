"""gRPC server reflection for the front door: `grpcurl -plaintext <envoy> list` (and describe, and
calls by name) through Envoy, for every public service at once.

Each service answers reflection only for itself, and Envoy routes by path, not by the service a
reflection request asks about, so no one service could answer behind the front door. This small
server answers from the descriptor set instead, showing exactly what the front door routes:
the public services and their public RPCs (internal RPCs and services are left out).

    python -m mesh.reflection --descriptor-set gen/descriptors/chat4all.binpb --port 18902 \\
        --service chat4all.users.v1.UserService [--service ...]
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Iterable
from concurrent import futures
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from mesh.rpcs import is_public, load

log = logging.getLogger("chat4all.mesh.reflection")
V1_SERVICE = "grpc.reflection.v1.ServerReflection"  # the same messages as v1alpha, renamed


def public_pool(descriptor_set: Path, services: Iterable[str]) -> descriptor_pool.DescriptorPool:
    """The descriptor set with only `services` and their public RPCs left in it."""
    wanted = set(services)
    pool = descriptor_pool.DescriptorPool()
    for file in load(descriptor_set).file:  # dependencies come first in a set built --include_imports
        kept: list[descriptor_pb2.ServiceDescriptorProto] = []
        for service in file.service:
            if f"{file.package}.{service.name}" in wanted:
                public = [method for method in service.method if is_public(method)]
                del service.method[:]
                service.method.extend(public)
                kept.append(service)
        del file.service[:]
        file.service.extend(kept)
        pool.AddSerializedFile(file.SerializeToString())
    missing = [name for name in wanted if not _has_service(pool, name)]
    if missing:
        raise LookupError(f"not in {descriptor_set}: {', '.join(sorted(missing))}")
    return pool


def _has_service(pool: descriptor_pool.DescriptorPool, name: str) -> bool:
    try:
        pool.FindServiceByName(name)
    except KeyError:
        return False
    return True


def server(descriptor_set: Path, services: list[str], host: str, port: int) -> tuple[grpc.Server, int]:
    pool = public_pool(descriptor_set, services)
    listed = [*services, reflection.SERVICE_NAME, V1_SERVICE]
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = reflection.ReflectionServicer(listed, pool=pool)
    reflection.enable_server_reflection(listed, grpc_server, pool=pool)
    grpc_server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(V1_SERVICE, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        ),
    }),))
    health_servicer = health.HealthServicer()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    bound = grpc_server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot bind {host}:{port}")
    return grpc_server, bound


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mesh.reflection", description=__doc__.split("\n\n")[0])
    parser.add_argument("--descriptor-set", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--service", action="append", default=[], required=True, help="a public service's full name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='{"level":"%(levelname)s","logger":"%(name)s","message":"%(message)s"}')
    grpc_server, port = server(args.descriptor_set, args.service, args.host, args.port)
    grpc_server.start()
    log.info("serving reflection for %d services on %s:%d", len(args.service), args.host, port)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
    grpc_server.stop(grace=2).wait()


if __name__ == "__main__":
    main()
