"""WebhookService: clients' HTTP endpoints that receive conversation events, signed, retried
until accepted (bounded, then dead-lettered), with a delivery log.

One process holds the gRPC API and the dispatcher: `followers` read MessageService's event
streams (a conversation's, or a user's across their conversations) into a durable queue,
`dispatcher` POSTs the queue out.
"""
