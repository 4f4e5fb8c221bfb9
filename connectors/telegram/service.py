"""The Telegram connector process: MessageConnector over gRPC (the SDK's servicer on
TelegramPlatform), and updates from Telegram (webhook or polling) published to
chat4all.inbound.v1."""

from __future__ import annotations

import asyncio
import logging

from connectors.sdk.assembly import assemble, open_http
from connectors.sdk.storage_downloads import StorageDownloads
from connectors.telegram.bot_api import BotApi
from connectors.telegram.media import MediaUploads
from connectors.telegram.platform import TelegramPlatform
from connectors.telegram.polling import Poller
from connectors.telegram.settings import TelegramSettings
from connectors.telegram.updates import ALLOWED_UPDATES, TelegramUpdates, media_locator
from connectors.telegram.webhook import TelegramWebhook
from services.runtime.app import Runtime
from services.runtime.errors import ResourceExhausted, Unavailable

log = logging.getLogger("chat4all.telegram")


async def setup(runtime: Runtime) -> None:
    settings: TelegramSettings = runtime.settings  # type: ignore[assignment]
    settings.validate()
    http = await open_http(runtime, "telegram", settings, secrets=[settings.telegram_bot_token])
    api = BotApi(http, settings.telegram_api_url, settings.telegram_bot_token,
                 timeout_seconds=settings.connector_http_timeout_seconds)
    platform = TelegramPlatform(settings, api)
    connector = await assemble(runtime, platform)
    if settings.telegram_media_delivery == "upload":
        downloads = StorageDownloads(
            connect_timeout_seconds=settings.connector_http_connect_timeout_seconds,
            read_timeout_seconds=settings.connector_http_timeout_seconds,
            redact=http.redact,
        )
        downloads = await runtime.own(await downloads.open(), lambda d: d.close())
        platform.uploads = MediaUploads(api, downloads, timeout_seconds=settings.media_send_timeout_seconds)

    mode = settings.telegram_inbound_mode
    log.info("telegram connector", extra={"bot_id": settings.bot_id, "inbound_mode": mode,
                                          "media_delivery": settings.telegram_media_delivery})
    if mode == "off":
        return
    publisher = await connector.inbound_publisher()
    # Both ways in (webhook, polling) hand updates to the same TelegramUpdates, which imports media.
    updates = TelegramUpdates(settings.bot_id, publisher, await connector.media_importer(media_locator(api)))
    if mode == "webhook":
        server = connector.webhook_server()
        webhook = TelegramWebhook(settings.telegram_webhook_secret, updates)
        server.add_route("POST", settings.telegram_webhook_path, webhook.receive)
        await connector.start_webhooks(server)
        if settings.telegram_webhook_public_url:
            await register_webhook(api, settings)
    else:
        poller = Poller(settings, api, connector.redis, connector.prefix, updates)
        poller.start()
        # Registered after the producer, so stopped before it closes (resources close in reverse).
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
