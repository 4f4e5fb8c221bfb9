"""The Telegram connector process: MessageConnector over gRPC, and updates from
Telegram (webhook or polling) published to chat4all.inbound.v1."""

from __future__ import annotations

import asyncio
import logging

from chat4all.connector.v1 import service_pb2, service_pb2_grpc

from connectors.telegram.bot_api import BotApi
from connectors.telegram.connector import TelegramConnector
from connectors.telegram.flood_control import FloodControl
from connectors.telegram.polling import Poller
from connectors.telegram.send_ledger import SendLedger
from connectors.telegram.settings import TelegramSettings
from connectors.telegram.updates import ALLOWED_UPDATES, InboundUpdates, UpdateLedger
from connectors.telegram.webhook import WebhookServer
from services.messaging import topics
from services.runtime import kafka
from services.runtime.app import Runtime
from services.runtime.errors import ResourceExhausted, Unavailable

log = logging.getLogger("chat4all.telegram")
SERVICE_NAME = service_pb2.DESCRIPTOR.services_by_name["MessageConnector"].full_name


async def setup(runtime: Runtime) -> None:
    settings: TelegramSettings = runtime.settings  # type: ignore[assignment]
    settings.validate()
    api = await runtime.own(
        await BotApi(
            settings.telegram_api_url,
            settings.telegram_bot_token,
            timeout_seconds=settings.telegram_http_timeout_seconds,
            connect_timeout_seconds=settings.telegram_http_connect_timeout_seconds,
            max_connections=settings.telegram_http_max_connections,
        ).open(),
        lambda a: a.close(),
    )
    client = await runtime.redis(settings.telegram_redis_max_connections, settings.telegram_redis_wait_seconds)
    connector = TelegramConnector(settings, api, FloodControl(client, settings), SendLedger(client, settings))
    runtime.add_servicer(service_pb2_grpc.add_MessageConnectorServicer_to_server, connector, SERVICE_NAME)

    mode = settings.telegram_inbound_mode
    log.info("telegram connector", extra={"bot_id": settings.bot_id, "inbound_mode": mode})
    if mode == "off":
        return
    await kafka.ensure_topics(settings.kafka_bootstrap, {topics.INBOUND: topics.PARTITIONS[topics.INBOUND]})
    producer = await runtime.kafka_producer()
    inbound = InboundUpdates(settings, UpdateLedger(client, settings), producer)
    # Registered after the producer, so stopped before it closes (resources close in reverse).
    if mode == "webhook":
        server = WebhookServer(
            settings.telegram_webhook_host,
            settings.telegram_webhook_port,
            settings.telegram_webhook_path,
            settings.telegram_webhook_secret,
            inbound,
        )
        await server.start()
        runtime.on_shutdown(server.stop)
        if settings.telegram_webhook_public_url:
            await register_webhook(api, settings)
    else:
        poller = Poller(settings, api, client, inbound)
        poller.start()
        runtime.on_shutdown(poller.stop)


async def register_webhook(api: BotApi, settings: TelegramSettings, attempts: int = 5) -> None:
    """setWebhook, riding out throttling (Telegram allows it about once a second) and
    transient failures; a refusal (bad URL, bad token) stops the start-up."""
    for attempt in range(1, attempts + 1):
        try:
            await api.set_webhook(settings.telegram_webhook_public_url, settings.telegram_webhook_secret, ALLOWED_UPDATES)
            log.info("webhook registered with Telegram")
            return
        except (ResourceExhausted, Unavailable) as error:
            if attempt == attempts:
                raise
            delay = error.retry_after_seconds or float(attempt)
            log.warning("setWebhook failed; retrying in %.1fs: %s", delay, error.message)
            await asyncio.sleep(delay)
