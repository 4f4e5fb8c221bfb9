"""MessageService: ingest (durable in Kafka before acknowledging), history, event streams, dead letters."""
