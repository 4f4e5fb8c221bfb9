"""The WhatsApp connector process: MessageConnector over gRPC, and the webhook
Meta posts messages and statuses to (verification handshake on GET)."""

from __future__ import annotations

import logging

from connectors.sdk.assembly import assemble, open_http
from connectors.sdk.meta import MetaWebhook
from connectors.sdk.reply_window import ReplyWindow
from connectors.whatsapp.events import WhatsAppEvents, media_locator
from connectors.whatsapp.media_uploads import MediaUploads
from connectors.whatsapp.platform import WhatsAppPlatform
from connectors.whatsapp.settings import WhatsAppSettings
from services.runtime.app import Runtime

log = logging.getLogger("chat4all.whatsapp")


async def setup(runtime: Runtime) -> None:
    settings: WhatsAppSettings = runtime.settings  # type: ignore[assignment]
    settings.validate()
    http = await open_http(runtime, "whatsapp", settings, secrets=[settings.whatsapp_access_token])
    platform = WhatsAppPlatform(settings, http)
    connector = await assemble(runtime, platform)
    window = ReplyWindow(connector.redis, f"{connector.prefix}:window", settings.whatsapp_reply_window_seconds)
    platform.window = window
    if settings.whatsapp_media_delivery == "upload":
        uploads = MediaUploads(
            http,
            connector.redis,
            connector.prefix,
            f"{platform.base_url}/{settings.whatsapp_phone_number_id}/media",
            platform.auth_headers,
            id_ttl_seconds=settings.whatsapp_media_id_ttl_seconds,
            wait_seconds=settings.whatsapp_media_upload_wait_seconds,
            upload_timeout_seconds=settings.whatsapp_media_upload_timeout_seconds,
        )
        platform.uploads = await runtime.own(await uploads.open(), lambda u: u.close())

    publisher = await connector.inbound_publisher()
    media = await connector.media_importer(media_locator(http, platform.base_url, platform.auth_headers))
    events = WhatsAppEvents(
        settings.whatsapp_phone_number_id, publisher, connector.status_reports(publisher), window, media
    )
    webhook = MetaWebhook(
        "whatsapp", "whatsapp_business_account", settings.whatsapp_app_secret, settings.whatsapp_verify_token, events.handle
    )
    server = connector.webhook_server()
    server.add_route("GET", settings.whatsapp_webhook_path, webhook.handshake)
    server.add_route("POST", settings.whatsapp_webhook_path, webhook.receive)
    await connector.start_webhooks(server)
    log.info("whatsapp connector", extra={"phone_number_id": settings.whatsapp_phone_number_id})
