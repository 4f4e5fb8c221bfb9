"""Prometheus metrics of the dispatcher (the RPCs have the runtime's RED metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_QUEUED = Counter("chat4all_webhook_events_queued_total", "Events queued for a webhook.")
ATTEMPTS = Counter(
    "chat4all_webhook_attempts_total",
    "POSTs to webhook endpoints, by outcome: accepted (2xx), rejected (another status), unreachable (no answer).",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "chat4all_webhook_attempt_seconds",
    "Time from the start of a POST to its answer or failure.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERIES_FINISHED = Counter(
    "chat4all_webhook_deliveries_finished_total", "Deliveries that ended, by state.", ["state"]
)
STREAMS_FOLLOWED = Gauge(
    "chat4all_webhook_streams_followed", "Event streams (a conversation's or a user's) this process follows now."
)
EVENTS_SKIPPED = Counter(
    "chat4all_webhook_events_skipped_total",
    "Times a stream resumed from its head because its cursor was older than the retained event log.",
)
