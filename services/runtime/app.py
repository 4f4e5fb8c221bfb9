"""Running a service: one gRPC server with health, reflection, interceptors,
metrics and tracing, the resources it opened, and graceful shutdown.

A service module provides `setup(runtime)`, which registers its servicers and
opens what it needs (PostgreSQL, Redis, Kafka) through the runtime; resources
are closed in reverse order only after the server has drained.

Shutdown on SIGTERM/SIGINT: health turns NOT_SERVING, the server stops
accepting RPCs and gives in-flight ones `shutdown_grace_seconds` to finish,
then pools and clients close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import uvloop
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor

from services.runtime import kafka, postgres, redis_client
from services.runtime.config import RuntimeSettings, load_settings
from services.runtime.interceptors import ObservabilityInterceptor
from services.runtime.logs import configure_logging
from services.runtime.metrics import MetricsServer
from services.runtime.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger("chat4all.runtime")
S = TypeVar("S", bound=RuntimeSettings)
T = TypeVar("T")


class Runtime:
    """What a service's setup() gets: its settings, its server, and its resources."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.health = HealthServicer()
        self.server = grpc.aio.server(
            interceptors=[aio_server_interceptor(), ObservabilityInterceptor()],
            options=[("grpc.so_reuseport", 0)],
        )
        self.service_names: list[str] = []
        self.port: int = 0
        self.metrics = MetricsServer(settings.metrics_host, settings.metrics_port)
        self._resources = contextlib.AsyncExitStack()
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()

    # Registration -----------------------------------------------------------------

    def add_servicer(self, add_to_server: Callable[[Any, grpc.aio.Server], None], servicer: Any, service_name: str) -> None:
        add_to_server(servicer, self.server)
        self.service_names.append(service_name)

    def add_generic_handler(self, handler: grpc.GenericRpcHandler, service_name: str) -> None:
        self.server.add_generic_rpc_handlers((handler,))
        self.service_names.append(service_name)

    # Resources, closed after the server drained ------------------------------------

    async def own(self, resource: T, close: Callable[[T], Awaitable[Any]]) -> T:
        self._resources.push_async_callback(close, resource)
        return resource

    async def postgres(self, component: str | None = None, migrations: Path | None = None):
        s = self.settings
        pool = await self.own(
            await postgres.open_pool(s.postgres_dsn, s.postgres_pool_min, s.postgres_pool_max, s.service_name),
            lambda p: p.close(),
        )
        if migrations is not None:
            await postgres.migrate(pool, component or s.service_name, migrations)
        return pool

    async def redis(self, max_connections: int = 50, wait_seconds: float = 10.0):
        client = await redis_client.open_redis(self.settings.redis_url, self.settings.service_name, max_connections, wait_seconds)
        return await self.own(client, lambda r: r.aclose())

    async def kafka_producer(self, **overrides):
        return await self.own(await kafka.open_producer(self.settings, **overrides), lambda p: p.stop())

    async def channel(self, target: str) -> grpc.aio.Channel:
        """A client channel to another service; trace context travels with every call."""
        channel = grpc.aio.insecure_channel(target, interceptors=aio_client_interceptors())
        return await self.own(channel, lambda c: c.close())

    def on_shutdown(self, callback: Callable[[], Awaitable[Any]]) -> None:
        self._resources.push_async_callback(callback)

    # Lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health_name, reflection.SERVICE_NAME], self.server
        )
        address = f"{self.settings.grpc_host}:{self.settings.grpc_port}"
        self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise RuntimeError(f"cannot bind gRPC server to {address}")
        await self.server.start()
        if self.settings.metrics_port:
            await self.metrics.start()
        for name in self.service_names:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "serving",
            extra={"grpc_port": self.port, "metrics_port": self.metrics.port, "services": self.service_names},
        )

    def request_shutdown(self) -> None:
        self._stopping.set()

    async def wait_for_shutdown_request(self) -> None:
        await self._stopping.wait()

    async def stop(self) -> None:
        """Drain, then close: the order that lets an in-flight call finish."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.settings.shutdown_grace_seconds
        log.info("draining", extra={"grace_seconds": grace})
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        log.info("server stopped; closing resources")
        await self._resources.aclose()
        await self.metrics.stop()
        log.info("stopped")


async def serve(settings: RuntimeSettings, setup: Callable[[Runtime], Awaitable[None]]) -> None:
    runtime = Runtime(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime.request_shutdown)
    loop.add_signal_handler(signal.SIGUSR1, _log_tasks)
    try:
        await setup(runtime)
        await runtime.start()
        await runtime.wait_for_shutdown_request()
    finally:
        await runtime.stop()
        shutdown_tracing()


def _log_tasks() -> None:
    """SIGUSR1: where every task waits now, for an operator looking at a stuck process."""
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=12)
        where = " <- ".join(f"{f.f_code.co_filename.rsplit('/', 2)[-1]}:{f.f_lineno} {f.f_code.co_name}" for f in reversed(frames))
        log.info("task", extra={"task": task.get_name(), "stack": where})


def run_service(
    name: str,
    setup: Callable[[Runtime], Awaitable[None]],
    settings_class: type[S] = RuntimeSettings,  # type: ignore[assignment]
) -> None:
    """The `__main__` of every service: configure plumbing from the environment and serve."""
    settings = load_settings(settings_class)
    if settings.service_name == RuntimeSettings.service_name:
        settings = load_settings(settings_class, service_name=name)
    configure_logging(settings.service_name, settings.log_level)
    configure_tracing(settings.service_name, settings.otel_exporter, settings.otel_endpoint)
    uvloop.run(serve(settings, setup))
