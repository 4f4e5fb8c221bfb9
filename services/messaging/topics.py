"""Kafka topics of the message path (created by the local platform and by deployments)."""

# Accepted messages, delivery status changes and replays, keyed by conversation_id:
# one partition holds a conversation, which gives per-conversation order.
MESSAGES = "chat4all.messages.v1"
# Inbound platform messages, keyed by channel:account:chat, before a conversation is known.
INBOUND = "chat4all.inbound.v1"
# Deliveries parked after a permanent failure or the last retry, keyed by conversation_id.
DEAD_LETTERS = "chat4all.messages.dlq.v1"

PARTITIONS = {MESSAGES: 8, INBOUND: 8, DEAD_LETTERS: 8}
