"""Prometheus metrics of every connector, labelled by connector (served by the runtime's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

API_CALLS = Counter(
    "chat4all_connector_api_calls_total",
    "Platform API calls by operation and outcome (2xx, 4xx, 429, 5xx, timeout, connection_error).",
    ["connector", "operation", "outcome"],
)
API_SECONDS = Histogram(
    "chat4all_connector_api_call_seconds",
    "Round trip of platform API calls (long polls include their wait).",
    ["connector", "operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SENDS = Counter(
    "chat4all_connector_sends_total",
    "SendMessage calls by outcome (sent, repeat: answered from the send record, in_progress, refused, "
    "throttled, circuit_open, failed).",
    ["connector", "outcome"],
)
SENDS_THROTTLED = Counter(
    "chat4all_connector_sends_throttled_total",
    "Sends held back by a rate limit before calling the platform (scope: the limit that was full), "
    "or refused by the platform itself (scope: platform).",
    ["connector", "scope"],
)
INBOUND = Counter(
    "chat4all_connector_inbound_total",
    "Platform events received (kind: message, status, ...) by outcome (published, duplicate, ignored, "
    "unauthorized, busy, failed, unknown_message).",
    ["connector", "kind", "outcome"],
)
CIRCUIT_STATE = Gauge(
    "chat4all_connector_circuit_state",
    "Circuit breaker per account: 0 closed (sending), 1 open (failing fast), 2 half-open (one probe).",
    ["connector", "account"],
)
CIRCUIT_TRANSITIONS = Counter(
    "chat4all_connector_circuit_transitions_total",
    "Circuit breaker state changes per account, by the state entered.",
    ["connector", "account", "state"],
)
