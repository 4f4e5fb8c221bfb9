"""The shared runtime every Chat4All service and connector is built on.

Plumbing lives here once (configuration, JSON logs, metrics, tracing, health,
reflection, graceful shutdown, PostgreSQL, Redis and Kafka clients), so a
service package holds only its own logic.
"""
