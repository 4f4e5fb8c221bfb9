"""The Telegram connector: MessageConnector for the Telegram Bot API, on the connector SDK.

Outbound: text goes out with sendMessage, each attachment as a message of its
own with sendPhoto/sendVideo/sendAudio/sendDocument (platform.py, media.py,
bot_api.py), the file streamed from storage into the request ("upload") or
fetched by Telegram from its URL ("url"). The SDK's servicer sends a message
once per (message_id, chat), resuming after the parts that went out, each part
within the bot's and the chat's limits shared by every replica, behind a
circuit breaker.
Inbound: updates arrive by webhook (webhook.py) or long polling (polling.py) and
are published once each to chat4all.inbound.v1 (updates.py), their media imported
into the file service first (getFile, up to the Bot API's 20 MB).

Run: `python -m connectors.telegram`; settings in settings.py (C4A_TELEGRAM_*, C4A_CONNECTOR_*).
"""
