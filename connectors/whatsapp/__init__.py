"""The WhatsApp Cloud API connector, on the connector SDK.

Outbound: text, templates and media (by link) from one business number
(platform.py), within the number's throughput and the per-user pair limit,
refusing free-form messages outside the 24-hour window before any call.
Inbound: the Meta webhook (handshake, X-Hub-Signature-256) gives user messages,
published to chat4all.inbound.v1, and statuses (sent, delivered, read, failed),
published as delivery status changes (events.py).

Run: `python -m connectors.whatsapp`; settings in settings.py (C4A_WHATSAPP_*, C4A_CONNECTOR_*).
"""
