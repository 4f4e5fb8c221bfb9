"""The Instagram connector process: MessageConnector over gRPC, and the webhook
Meta posts messages, echoes and read receipts to (verification handshake on GET)."""

from __future__ import annotations

import logging

from connectors.instagram.events import InstagramEvents, locate_attachment
from connectors.instagram.platform import InstagramPlatform
from connectors.instagram.settings import InstagramSettings
from connectors.sdk.assembly import assemble, open_http
from connectors.sdk.meta import MetaWebhook
from connectors.sdk.reply_window import ReplyWindow
from services.runtime.app import Runtime

log = logging.getLogger("chat4all.instagram")


async def setup(runtime: Runtime) -> None:
    settings: InstagramSettings = runtime.settings  # type: ignore[assignment]
    settings.validate()
    http = await open_http(runtime, "instagram", settings, secrets=[settings.instagram_access_token])
    platform = InstagramPlatform(settings, http)
    connector = await assemble(runtime, platform)
    window = ReplyWindow(connector.redis, f"{connector.prefix}:window", settings.instagram_reply_window_seconds)
    platform.window = window

    publisher = await connector.inbound_publisher()
    media = await connector.media_importer(locate_attachment)
    events = InstagramEvents(settings.instagram_account_id, publisher, connector.status_reports(publisher), window, media)
    webhook = MetaWebhook("instagram", "instagram", settings.instagram_app_secret, settings.instagram_verify_token, events.handle)
    server = connector.webhook_server()
    server.add_route("GET", settings.instagram_webhook_path, webhook.handshake)
    server.add_route("POST", settings.instagram_webhook_path, webhook.receive)
    await connector.start_webhooks(server)
    log.info("instagram connector", extra={"account_id": settings.instagram_account_id})
