"""WebhookService: clients' HTTP endpoints that receive conversation events, signed, retried
until accepted (bounded, then dead-lettered), with a delivery log.

One process holds the gRPC API and the dispatcher: `followers` read MessageService's
conversation streams into a durable queue, `dispatcher` POSTs the queue out.
"""
