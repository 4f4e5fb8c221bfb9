"""The connector's Prometheus metrics (registered once, served by the runtime's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

API_CALLS = Counter(
    "chat4all_telegram_api_calls_total",
    "Bot API calls by method and outcome (ok, throttled, server_error, rejected, unauthorized, timeout, "
    "connection_error).",
    ["method", "outcome"],
)
API_SECONDS = Histogram(
    "chat4all_telegram_api_call_seconds",
    "Round trip of Bot API calls (getUpdates includes its long-poll wait).",
    ["method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SENDS = Counter(
    "chat4all_telegram_sends_total",
    "SendMessage calls by outcome (sent, repeat: answered from the send record, in_progress, refused, failed).",
    ["outcome"],
)
SENDS_THROTTLED = Counter(
    "chat4all_telegram_sends_throttled_total",
    "Sends refused by the connector's own rate limit before calling Telegram, by the limit that was full.",
    ["scope"],
)
INBOUND_UPDATES = Counter(
    "chat4all_telegram_inbound_updates_total",
    "Updates received from Telegram by outcome (published, duplicate, ignored, unauthorized, busy, failed).",
    ["mode", "outcome"],
)
