"""The local platform end to end: the real `scripts/platformctl` commands, on free ports and in a
temporary var/ directory, so it never touches a developer's running platform.

The machine's PostgreSQL and Redis are reused as `up` would reuse them; the test writes only to
its own database (created by `up`, dropped here) and never to Redis.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesh.rpcs import services_in
from tests.mesh.keys import api_key
from tests.support.platform import ROOT, Platform, alive, running_platform
from scripts.platform import binaries
from scripts.platform import config as platform_config

TEST_TOPIC = "platform-test.v1"  # not a topic the services consume: they never see our record


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    def customize(raw: dict[str, Any]) -> None:
        raw["kafka"]["topics"][TEST_TOPIC] = 1

    with running_platform(customize) as handle:
        yield handle


def produce(bootstrap: str, value: bytes) -> None:
    from aiokafka import AIOKafkaProducer

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
        await producer.start()
        try:
            await producer.send_and_wait(TEST_TOPIC, value, partition=0)
        finally:
            await producer.stop()

    asyncio.run(asyncio.wait_for(send(), 30))


def consume_all(bootstrap: str, timeout: float = 30) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> list[bytes]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
        await consumer.start()
        try:
            partition = TopicPartition(TEST_TOPIC, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            batches = await consumer.getmany(partition, timeout_ms=5000)
            return [record.value for record in batches.get(partition, [])]
        finally:
            await consumer.stop()

    return asyncio.run(asyncio.wait_for(read(), timeout))


def reached_upstream(target: str, method: str, key: str | None) -> bool:
    """Whether Envoy passed a native gRPC call on to a service, whatever the service answered:
    Envoy marks proxied responses with x-envoy-upstream-service-time."""
    import grpc

    metadata = [("authorization", f"Bearer {key}")] if key else []
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            _, outcome = call.with_call(b"", metadata=metadata, timeout=10)
            metadata = list(outcome.initial_metadata() or ()) + list(outcome.trailing_metadata() or ())
        except grpc.RpcError as exc:
            metadata = list(exc.initial_metadata() or ()) + list(exc.trailing_metadata() or ())
    return any(key == "x-envoy-upstream-service-time" for key, _ in metadata)


def first_public_method(descriptor: Path, service: str) -> str:
    from mesh.rpcs import rpcs_of

    return next(rpc.path for rpc in rpcs_of(descriptor, [service]) if rpc.public)


def written_apps(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def exists(module: str) -> bool:
        base = ROOT / Path(*module.split("."))
        return (base / "__main__.py").exists() or base.with_suffix(".py").exists()

    return {name: app for name, app in raw["apps"].items() if exists(app["module"])}


def test_bootstrap_is_quick_when_everything_is_installed() -> None:
    subprocess.run([str(ROOT / "scripts" / "bootstrap")], check=True, timeout=600, capture_output=True)
    started = time.monotonic()
    subprocess.run([str(ROOT / "scripts" / "bootstrap")], check=True, timeout=60, capture_output=True)
    assert time.monotonic() - started < 5


def test_envoy_config_validates(platform: Platform, tmp_path: Path) -> None:
    from mesh.rpcs import rpcs_of
    from scripts.platform.parts.envoy import Envoy
    from scripts.platform.stack import Stack

    stack = Stack(platform_config.load(platform.config_path, tmp_path))
    envoy = next(part for part in stack.parts if isinstance(part, Envoy))
    done = envoy.validate()
    assert done.returncode == 0, done.stdout + done.stderr
    config = json.loads(envoy.config_path.read_text())
    paths = [route["match"]["path"] for route in _routes(config) if route["match"].get("path", "").startswith("/chat4all.")]
    descriptor = envoy.descriptor_set
    apis = [pkg for app in platform.raw["apps"].values() for pkg in app.get("apis", [])]
    # One route per public RPC of every app's `apis`; none to internal RPCs.
    public = [rpc.path for rpc in rpcs_of(descriptor, services_in(descriptor, apis)) if rpc.public]
    assert sorted(paths) == sorted(public)


def _routes(config: dict[str, Any]) -> list[dict[str, Any]]:
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return manager["route_config"]["virtual_hosts"][0]["routes"]


def test_up_status_restart_keeps_data_and_stop_ends_everything(platform: Platform) -> None:
    import psycopg

    # up: everything healthy, and a second up leaves the running parts alone.
    platform.check("up")
    first_pids = platform.pids()
    assert {"seaweedfs", "kafka", "envoy"} <= set(first_pids)
    assert platform.check("up") and platform.pids() == first_pids

    status = platform.check("status")
    rows = {line.split()[0]: line for line in status.splitlines()[1:] if line and not line.startswith("logs:")}
    expected = ["postgres", "redis", "seaweedfs", "kafka", "envoy", *platform.raw["apps"]]
    assert sorted(rows) == sorted(expected), status
    for name in expected:
        assert " ok  " in rows[name], status
    grpc_apps = {name: app for name, app in written_apps(platform.raw).items() if app.get("grpc_port")}
    for name in grpc_apps:
        assert "SERVING" in rows[name], status

    # Every service answers reflection, and Envoy routes native gRPC to it.
    descriptor = platform_config.load(platform.config_path).repo_path(platform.raw["envoy"]["descriptor"])
    envoy_target = f"{platform.host}:{platform.raw['envoy']['port']}"
    key = api_key(platform.raw, "platform-test")  # when the platform checks API keys
    for name, app in grpc_apps.items():
        listed = subprocess.run([str(binaries.grpcurl()), "-plaintext", f"{platform.host}:{app['grpc_port']}", "list"],
                                capture_output=True, text=True, timeout=30, check=True).stdout.split()
        assert "grpc.health.v1.Health" in listed, (name, listed)
        if descriptor.exists() and app.get("apis"):  # public: routed by Envoy
            services = services_in(descriptor, app["apis"])
            assert services and set(services) <= set(listed), (name, services, listed)
            assert reached_upstream(envoy_target, first_public_method(descriptor, services[0]), key), name

    # Data in each store of ours (and in our own database on the shared server).
    token = uuid.uuid4().hex
    produce(platform.kafka_bootstrap, token.encode())
    platform.s3().put_object(Bucket="chat4all-files", Key=f"platform-test/{token}", Body=token.encode())
    dsn = platform.postgres_dsn(platform.raw["postgres"]["database"])
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table platform_test (token text primary key)")
        conn.execute("insert into platform_test values (%s)", (token,))

    platform.check("stop")
    for name, pid in first_pids.items():
        assert not alive(pid), f"{name} (pid {pid}) still runs after stop"
    assert platform.run("status").returncode != 0

    platform.check("up")
    assert token.encode() in consume_all(platform.kafka_bootstrap)
    body = platform.s3().get_object(Bucket="chat4all-files", Key=f"platform-test/{token}")["Body"].read()
    assert body == token.encode()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select token from platform_test").fetchall() == [(token,)]

    second_pids = platform.pids()
    platform.check("stop")
    for name, pid in second_pids.items():
        assert not alive(pid), f"{name} (pid {pid}) still runs after stop"
    assert not list((platform.var / "run").glob("*.pid"))
