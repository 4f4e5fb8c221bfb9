"""Readiness probes: each asks a real question of the protocol, with a short timeout.

A probe never raises: it returns Health(ok, detail) so that `status` can show every part.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str

    def __str__(self) -> str:
        return self.detail


def _guard(probe: Callable[[], Health]) -> Health:
    try:
        return probe()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with its reason
        return Health(False, f"{type(exc).__name__}: {exc}".splitlines()[0][:120])


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def postgres(dsn: str, timeout: float = 2.0) -> Health:
    def probe() -> Health:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout)), autocommit=True) as conn:
            conn.execute("select 1").fetchone()
        return Health(True, "select 1 ok")

    return _guard(probe)


def redis(url: str, timeout: float = 2.0) -> Health:
    def probe() -> Health:
        import redis as redis_lib

        client = redis_lib.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return Health(bool(client.ping()), "PONG")
        finally:
            client.close()

    return _guard(probe)


def s3(endpoint: str, access_key: str, secret_key: str, region: str, timeout: float = 3.0) -> Health:
    def probe() -> Health:
        client = s3_client(endpoint, access_key, secret_key, region, timeout)
        buckets = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
        return Health(True, f"{len(buckets)} buckets")

    return _guard(probe)


def s3_client(endpoint: str, access_key: str, secret_key: str, region: str, timeout: float = 5.0):  # noqa: ANN201
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
    )


def kafka(bootstrap: str, timeout: float = 3.0) -> Health:
    """A metadata request through aiokafka's admin client."""

    async def ask() -> Health:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            topics = await admin.list_topics()
            return Health(True, f"{len(cluster['brokers'])} broker, {len(topics)} topics")
        finally:
            await admin.close()

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # retries while down are expected
    return _guard(lambda: asyncio.run(asyncio.wait_for(ask(), timeout + 1)))


def http_ok(url: str, timeout: float = 2.0) -> Health:
    def probe() -> Health:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                body = response.read(64).decode(errors="replace").strip()
                return Health(response.status == 200, f"{response.status} {body}".strip())
        except urllib.error.HTTPError as exc:
            return Health(False, f"HTTP {exc.code}")

    return _guard(probe)


def grpc_health(target: str, service: str = "", timeout: float = 2.0) -> Health:
    """grpc.health.v1 Check of `service` ("" is the server as a whole)."""

    def probe() -> Health:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(target) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=timeout
                )
            except grpc.RpcError as exc:
                return Health(False, f"{exc.code().name}: {exc.details()}")
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return Health(reply.status == health_pb2.HealthCheckResponse.SERVING, status)

    return _guard(probe)


def wait_until(probe: Callable[[], Health], timeout: float, alive: Callable[[], bool] | None = None) -> Health:
    """Retry `probe` until it is ok, the deadline passes, or `alive` says the process died."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        health = probe()
        if health.ok:
            return health
        if alive is not None and not alive():
            return Health(False, f"exited before it was ready (last probe: {health.detail})")
        if time.monotonic() >= deadline:
            return health
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 1.0)
