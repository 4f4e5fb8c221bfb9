"""What the connector tests share: a platform emulator as a child process and a client
of its HTTP API, a Redis key prefix that is cleaned up afterwards, a collector of what
the connectors publish on Kafka, and a connector running in-process behind a gRPC stub.

Each test module keeps what is its platform's own (the emulator's endpoints, the
settings, the requests it sends) in subclasses and small helpers of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Self, TypeVar

import aiohttp
import grpc
import pytest
import redis.asyncio as redis
from aiokafka.structs import ConsumerRecord
from chat4all.connector.v1 import service_pb2_grpc
from chat4all.events.v1 import event_pb2

from connectors.sdk.settings import ConnectorSettings
from services.messaging import topics
from services.runtime import kafka
from services.runtime.app import Runtime
from services.runtime.config import RuntimeSettings, load_settings
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import ChildProcess

R = TypeVar("R", bound="PublishedRecords")
S = TypeVar("S", bound=RuntimeSettings)

# Emulator ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def emulator_process(log_dir: Path, name: str, module: str, *args: str, cwd: Path | None = None,
                           start_timeout: float = 30.0) -> AsyncIterator[str]:
    """`python -m module --port <free port> *args` until the block ends; yields its base URL."""
    port = free_port()
    process = ChildProcess(f"{name}-{port}", [sys.executable, "-m", module, "--port", str(port), *args],
                           log_dir, cwd=cwd)
    try:
        wait_for_port(port, timeout=start_timeout)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


class EmulatorClient:
    """An emulator's HTTP API; a subclass adds its platform's test endpoints."""

    # Where `call` finds the emulator's own (test-only) endpoints such as faults.
    control = "/_emulator/"

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, log_dir: Path, name: str, module: str, *args: str, **options: Any) -> AsyncIterator[Self]:
        """A client of the emulator `module`, started for the block (see `emulator_process`)."""
        async with emulator_process(log_dir, name, module, *args, **options) as url, aiohttp.ClientSession() as http:
            yield cls(url, http)

    async def call(self, verb: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        """The JSON answer to a request, asserting its status."""
        async with self.http.request(verb, self.url + path, **kwargs) as response:
            body = await response.json()
            assert response.status == expect, body
            return body

    async def faults(self, **faults: Any) -> None:
        await self.call("PUT", f"{self.control}faults", json=faults)

    async def clear_faults(self) -> None:
        await self.call("DELETE", f"{self.control}faults")


class MetaEmulatorClient(EmulatorClient):
    """An emulator of a Meta platform (WhatsApp, Instagram; they share a command line): it has
    one webhook subscription, which it sets up with Meta's verification handshake."""

    # Its credentials, which a subclass sets: not the emulator's defaults, so a connector that
    # ignored the ones it is given would fail.
    access_token: str
    app_secret: str
    verify_token: str

    @classmethod
    def running_platform(cls, log_dir: Path, platform: str, *args: str,
                         **options: Any) -> contextlib.AbstractAsyncContextManager[Self]:
        """`connectors.emulators.<platform>` on loopback with these credentials, retrying webhooks quickly."""
        return cls.running(log_dir, f"{platform}-emulator", f"connectors.emulators.{platform}", "--host", "127.0.0.1",
                           "--app-secret", cls.app_secret, "--access-token", cls.access_token,
                           "--verify-token", cls.verify_token, "--webhook-initial-backoff", "0.1", *args, **options)

    async def subscribe(self, callback_url: str, verify_token: str | None = None, expect: int = 200) -> dict:
        token = self.verify_token if verify_token is None else verify_token
        return await self.call("PUT", f"{self.control}subscription", expect=expect,
                               json={"callback_url": callback_url, "verify_token": token})

    @contextlib.asynccontextmanager
    async def subscribed(self, callback_url: str) -> AsyncIterator[None]:
        """The subscription points at `callback_url` for the block. It is dropped afterwards, and
        with it the webhooks still queued, so none is retried into the next test."""
        subscribed = await self.subscribe(callback_url)
        assert subscribed["handshake"]["ok"], subscribed
        try:
            yield
        finally:
            await self.call("DELETE", f"{self.control}subscription")


# Redis ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def redis_namespace(name: str, settings_cls: type[RuntimeSettings] = RuntimeSettings
                          ) -> AsyncIterator[tuple[redis.Redis, str]]:
    """A client of the machine's Redis and a key prefix of our own; every key under the
    prefix is deleted afterwards, so runs leave nothing behind and never see each other's keys."""
    prefix = f"c4a-test-{name}-{uuid.uuid4().hex[:12]}"
    client = redis.from_url(load_settings(settings_cls).redis_url)
    try:
        yield client, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


# Kafka ------------------------------------------------------------------------------------


class PublishedRecords:
    """What the connectors publish while a module runs. Inbound messages are kept by account,
    the middle part of their key (`channel:account:chat`); a subclass keeps other topics by
    overriding `take`. Waiters are woken after every batch."""

    def __init__(self, channel: int | None = None) -> None:
        self.channel = channel  # when set, other channels' inbound records are not ours
        self.inbound: dict[str, list[tuple[bytes, event_pb2.Event]]] = defaultdict(list)
        self.arrived = asyncio.Condition()

    def inbound_account(self, record: ConsumerRecord) -> str | None:
        """The account of an inbound record of ours; None for anything else (other producers'
        records may share the broker)."""
        if record.topic != topics.INBOUND:
            return None
        parts = (record.key or b"").decode().split(":", 2)
        if len(parts) != 3 or (self.channel is not None and parts[0] != str(self.channel)):
            return None
        return parts[1]

    def take(self, record: ConsumerRecord) -> None:
        account = self.inbound_account(record)
        if account is not None:
            self.inbound[account].append((record.key, kafka.decode(record, event_pb2.Event)))

    def events(self, account: str) -> list[event_pb2.Event]:
        """The account's inbound events, in arrival order."""
        return [event for _, event in self.inbound[account]]

    def keys(self, account: str) -> list[bytes]:
        """The keys of the account's inbound records, in arrival order."""
        return [key for key, _ in self.inbound[account]]

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            async with self.arrived:
                await self.arrived.wait_for(condition)


@contextlib.asynccontextmanager
async def collect_published(records: R, kafka_bootstrap: str, settings_cls: type[RuntimeSettings],
                            *names: str) -> AsyncIterator[R]:
    """Feeds `records` everything on the topics `names` (created if missing) until the block ends."""
    await kafka.ensure_topics(kafka_bootstrap, {name: topics.PARTITIONS[name] for name in names})
    settings = load_settings(settings_cls, kafka_bootstrap=kafka_bootstrap)
    # No group: every partition from the start, without waiting for a group join.
    consumer = kafka.open_consumer(settings, *names, group_id=None)
    await consumer.start()

    async def collect() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            if not batches:
                continue
            async with records.arrived:
                for batch in batches.values():
                    for record in batch:
                        records.take(record)
                records.arrived.notify_all()

    task = asyncio.create_task(collect())
    try:
        yield records
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()


# The connector ----------------------------------------------------------------------------


# Nothing listens on port 1: a connector whose test starts no file service gets UNAVAILABLE for its
# media imports instead of reaching the file service of a local platform on the default port.
NO_FILE_SERVICE = "127.0.0.1:1"


def connector_settings(settings_cls: type[S], name: str, kafka_bootstrap: str, redis_prefix: str,
                       **values: Any) -> S:
    """A connector's settings for a test: gRPC on a free port, a short shutdown, its Redis
    keys under `redis_prefix`, no file service; `values` add to and override these."""
    common = dict(
        service_name=f"{name}-test",
        grpc_port=0,
        shutdown_grace_seconds=1,
        kafka_bootstrap=kafka_bootstrap,
        connector_redis_prefix=redis_prefix,
        files_target=NO_FILE_SERVICE,
    )
    return load_settings(settings_cls, **{**common, **values})


@contextlib.asynccontextmanager
async def running_connector(settings: RuntimeSettings, setup: Callable[[Runtime], Awaitable[Any]]
                            ) -> AsyncIterator[tuple[Runtime, service_pb2_grpc.MessageConnectorStub]]:
    """The connector `setup` builds, running in-process on `settings`, and a gRPC stub on it."""
    runtime = Runtime(settings)
    try:
        await setup(runtime)
        await runtime.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}")
        try:
            yield runtime, service_pb2_grpc.MessageConnectorStub(channel)
        finally:
            await channel.close()
    finally:
        await runtime.stop()


@contextlib.asynccontextmanager
async def running_meta_connector(settings: ConnectorSettings, setup: Callable[[Runtime], Awaitable[Any]],
                                 emulator: MetaEmulatorClient, webhook_path: str, subscribe: bool = True
                                 ) -> AsyncIterator[tuple[service_pb2_grpc.MessageConnectorStub, str]]:
    """A Meta platform's connector (see `running_connector`) and its webhook URL; with `subscribe`,
    the emulator's webhook subscription points at it while it runs."""
    async with running_connector(settings, setup) as (_, stub):
        webhook_url = f"http://127.0.0.1:{settings.connector_webhook_port}{webhook_path}"
        async with emulator.subscribed(webhook_url) if subscribe else contextlib.nullcontext():
            yield stub, webhook_url


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """The error a gRPC call fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value
