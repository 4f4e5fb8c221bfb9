"""The connector SDK: what every channel's connector shares.

A connector is one process serving `MessageConnector` over gRPC for one
platform account, plus a webhook server for what the platform sends back.
The SDK gives it: the gRPC servicer with idempotent, cancellation-safe sends
(servicer.py, send_ledger.py), rate limits shared across replicas in Redis
(rate_limits.py), a circuit breaker per account (breaker.py), a pooled HTTP
client with timeouts (http.py), files streamed from storage into a platform's
upload (storage_downloads.py), the webhook server (webhooks.py), once-only
publishing of inbound messages and status reports (inbound.py, statuses.py),
the reply window (reply_window.py), Meta's Graph API errors and webhook
signatures (meta.py), and the wiring onto the shared runtime (assembly.py).

A new channel implements `platform.Platform` (prepare, send, capabilities,
probe) in one module, maps its webhook events to `InboundMessageReceived`
events and status reports, and adds a settings class; see the README.
"""
