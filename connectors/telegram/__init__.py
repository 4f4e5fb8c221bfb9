"""The Telegram connector: MessageConnector for the Telegram Bot API.

Outbound: the router calls SendMessage; text goes out with sendMessage, once per
(message_id, chat), within Telegram's limits enforced in Redis across replicas
(see connector.py, flood_control.py, send_ledger.py, bot_api.py).
Inbound: updates arrive by webhook (webhook.py) or long polling (polling.py) and
are published once each to chat4all.inbound.v1 (updates.py).

Run: `python -m connectors.telegram`; settings in settings.py (C4A_TELEGRAM_*).
"""
