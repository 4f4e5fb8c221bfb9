"""Puts a connector process together on the shared runtime.

    async def setup(runtime):
        settings = runtime.settings
        http = await open_http(runtime, "whatsapp", settings, secrets=[token])
        connector = await assemble(runtime, WhatsAppPlatform(settings, http))
        publisher = await connector.inbound_publisher()       # when the platform sends events
        media = await connector.media_importer(locate)        # when its messages carry media
        server = connector.webhook_server()                   # add routes, then
        await connector.start_webhooks(server)

Redis keys of an account live under `<prefix>:{<account_id>}` (the account is the
cluster hash tag, so one send's keys share a slot).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import redis.asyncio as redis
from chat4all.connector.v1 import service_pb2, service_pb2_grpc
from chat4all.files.v1 import service_pb2_grpc as file_grpc

from connectors.sdk.breaker import CircuitBreaker
from connectors.sdk.http import PlatformHttp
from connectors.sdk.inbound import InboundLedger, InboundPublisher
from connectors.sdk.media_import import Locate, MediaImporter
from connectors.sdk.platform import Platform
from connectors.sdk.rate_limits import RateLimiter
from connectors.sdk.send_ledger import SendLedger
from connectors.sdk.servicer import ConnectorServicer
from connectors.sdk.settings import ConnectorSettings
from connectors.sdk.statuses import StatusReports
from connectors.sdk.webhooks import WebhookServer
from services.messaging import topics
from services.runtime import kafka
from services.runtime.app import Runtime

SERVICE_NAME = service_pb2.DESCRIPTOR.services_by_name["MessageConnector"].full_name


async def open_http(runtime: Runtime, name: str, settings: ConnectorSettings, secrets: Iterable[str] = ()) -> PlatformHttp:
    http = PlatformHttp(
        name,
        timeout_seconds=settings.connector_http_timeout_seconds,
        connect_timeout_seconds=settings.connector_http_connect_timeout_seconds,
        max_connections=settings.connector_http_max_connections,
        secrets=secrets,
    )
    return await runtime.own(await http.open(), lambda h: h.close())


@dataclasses.dataclass
class Connector:
    runtime: Runtime
    settings: ConnectorSettings
    platform: Platform
    redis: redis.Redis
    prefix: str
    ledger: SendLedger
    limiter: RateLimiter
    breaker: CircuitBreaker
    servicer: ConnectorServicer

    async def inbound_publisher(self) -> InboundPublisher:
        """Publishes platform events once each (creates the topics when missing)."""
        await kafka.ensure_topics(
            self.settings.kafka_bootstrap, {name: topics.PARTITIONS[name] for name in (topics.INBOUND, topics.MESSAGES)}
        )
        producer = await self.runtime.kafka_producer()
        ledger = InboundLedger(self.redis, f"{self.prefix}:inbound", self.settings.connector_inbound_ttl_seconds)
        return InboundPublisher(self.platform.name, ledger, producer)

    async def media_importer(self, locate: Locate) -> MediaImporter:
        """Imports the media of inbound messages into the file service; `locate` says where the
        platform serves one (see media_import.py)."""
        s, platform = self.settings, self.platform
        files = file_grpc.FileServiceStub(await self.runtime.channel(s.files_target))
        importer = MediaImporter(
            platform.name,
            platform.channel,
            platform.account_id,
            files,
            locate,
            budget_seconds=s.connector_media_import_seconds,
            connect_timeout_seconds=s.connector_http_connect_timeout_seconds,
            read_timeout_seconds=s.connector_http_timeout_seconds,
            spool_dir=s.connector_media_spool_dir,
            redact=platform.http.redact,
            owner_client_id=s.inbound_owner_client_id,
        )
        return await self.runtime.own(await importer.open(), lambda i: i.close())

    def status_reports(self, publisher: InboundPublisher) -> StatusReports:
        return StatusReports(self.platform.name, self.ledger, publisher)

    def webhook_server(self) -> WebhookServer:
        s = self.settings
        return WebhookServer(s.connector_webhook_host, s.connector_webhook_port, max_body_bytes=s.connector_webhook_max_bytes)

    async def start_webhooks(self, server: WebhookServer) -> int:
        # Registered after the producer, so stopped before it closes (resources close in reverse).
        port = await server.start()
        self.runtime.on_shutdown(server.stop)
        return port


async def assemble(runtime: Runtime, platform: Platform) -> Connector:
    """The MessageConnector service of `platform`, with its Redis-backed ledger, limits and breaker."""
    settings: ConnectorSettings = runtime.settings  # type: ignore[assignment]
    settings.validate()
    client = await runtime.redis(settings.connector_redis_max_connections, settings.connector_redis_wait_seconds)
    prefix = f"{settings.connector_redis_prefix}:{{{platform.account_id}}}"
    ledger = SendLedger(
        client, prefix, ttl_seconds=settings.connector_sent_ttl_seconds, lock_seconds=settings.connector_send_lock_seconds
    )
    limiter = RateLimiter(client, f"{prefix}:rate")
    breaker = CircuitBreaker(
        platform.name,
        platform.account_id,
        failure_threshold=settings.connector_breaker_failure_threshold,
        open_seconds=settings.connector_breaker_open_seconds,
        max_open_seconds=settings.connector_breaker_max_open_seconds,
    )
    servicer = ConnectorServicer(
        platform, ledger, limiter, breaker, health_timeout_seconds=settings.connector_health_timeout_seconds
    )
    runtime.add_servicer(service_pb2_grpc.add_MessageConnectorServicer_to_server, servicer, SERVICE_NAME)
    return Connector(runtime, settings, platform, client, prefix, ledger, limiter, breaker, servicer)
