"""The Instagram Messaging connector, on the connector SDK.

Outbound: text and attachments (by URL) as one professional account
(platform.py), within the Send API's text and audio/video limits and the
24-hour reply window. Inbound: the Meta webhook (handshake, X-Hub-Signature-256)
gives user messages, published to chat4all.inbound.v1, and read receipts,
published as READ (events.py); echoes of our own sends are dropped.

Run: `python -m connectors.instagram`; settings in settings.py (C4A_INSTAGRAM_*, C4A_CONNECTOR_*).
"""
