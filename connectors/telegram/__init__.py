"""The Telegram connector: MessageConnector for the Telegram Bot API, on the connector SDK.

Outbound: text goes out with sendMessage (platform.py, bot_api.py); the SDK's
servicer sends it once per (message_id, chat), within the bot's and the chat's
limits shared by every replica, behind a circuit breaker.
Inbound: updates arrive by webhook (webhook.py) or long polling (polling.py) and
are published once each to chat4all.inbound.v1 (updates.py).

Run: `python -m connectors.telegram`; settings in settings.py (C4A_TELEGRAM_*, C4A_CONNECTOR_*).
"""
