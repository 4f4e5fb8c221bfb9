"""Kafka producer and consumer helpers (aiokafka) for protobuf events.

Records carry a serialized protobuf message; headers carry its full type name
and the W3C trace context, so one trace spans API -> router -> connector.
Producers wait for `acks="all"`: a send returns only once the broker made the
record durable, which is what lets the API acknowledge a message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import RecordMetadata
from google.protobuf.message import Message
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from services.runtime.config import RuntimeSettings

log = logging.getLogger("chat4all.kafka")
tracer = trace.get_tracer("chat4all.kafka")

TYPE_HEADER = "chat4all-type"
M = TypeVar("M", bound=Message)


class EventTypeMismatch(ValueError):
    """A record holds a different protobuf type than the consumer expects."""


async def open_producer(settings: RuntimeSettings, **overrides) -> AIOKafkaProducer:
    options = dict(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=settings.service_name,
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        linger_ms=settings.kafka_linger_ms,
        request_timeout_ms=15_000,
    )
    options.update(overrides)
    producer = AIOKafkaProducer(**options)
    await producer.start()
    return producer


def open_consumer(settings: RuntimeSettings, *topics: str, group_id: str, **overrides) -> AIOKafkaConsumer:
    """A consumer that never auto-commits: handlers commit after a record is fully handled."""
    options = dict(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=settings.service_name,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # tansu does not answer a waiting fetch when data arrives, so the wait
        # bounds end-to-end latency; 10 ms is cheap on the local broker.
        fetch_max_wait_ms=10,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
    )
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def record_headers(event: Message, extra: Mapping[str, str] | None = None) -> list[tuple[str, bytes]]:
    carrier: dict[str, str] = {TYPE_HEADER: event.DESCRIPTOR.full_name, **(extra or {})}
    propagate.inject(carrier)
    return [(key, value.encode()) for key, value in carrier.items()]


async def publish(
    producer: AIOKafkaProducer,
    topic: str,
    key: str,
    event: Message,
    headers: Mapping[str, str] | None = None,
) -> RecordMetadata:
    """Send `event` keyed by `key` (the partition key, e.g. conversation_id) and wait for the ack."""
    with tracer.start_as_current_span(f"{topic} publish", kind=trace.SpanKind.PRODUCER) as span:
        span.set_attribute("messaging.system", "kafka")
        span.set_attribute("messaging.destination.name", topic)
        metadata = await producer.send_and_wait(
            topic, value=event.SerializeToString(), key=key.encode(), headers=record_headers(event, headers)
        )
        span.set_attribute("messaging.kafka.destination.partition", metadata.partition)
        span.set_attribute("messaging.kafka.message.offset", metadata.offset)
        return metadata


def headers_of(record: ConsumerRecord) -> dict[str, str]:
    return {key: value.decode() for key, value in (record.headers or ())}


def decode(record: ConsumerRecord, message_type: type[M]) -> M:
    declared = headers_of(record).get(TYPE_HEADER)
    expected = message_type.DESCRIPTOR.full_name
    if declared is not None and declared != expected:
        raise EventTypeMismatch(f"record {record.topic}/{record.partition}@{record.offset} holds {declared}, not {expected}")
    return message_type.FromString(record.value)


def trace_context(record: ConsumerRecord) -> otel_context.Context:
    """The producer's trace context, to parent the consumer's span on."""
    return propagate.extract(headers_of(record))


async def ensure_topics(bootstrap: str, partitions_by_topic: Mapping[str, int], replication: int = 1) -> list[str]:
    """Create missing topics; returns the ones created now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=count, replication_factor=replication)
            for name, count in partitions_by_topic.items()
            if name not in existing
        ]
        created = []
        for topic in missing:
            try:
                await admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:  # another replica won the race
                pass
        return created
    finally:
        await admin.close()

