"""The router: consumes the ordered message path from Kafka, stores each message
once, resolves its recipients, hands it to their connectors with retries, and
records every delivery status; also turns inbound platform messages into
conversation messages."""
