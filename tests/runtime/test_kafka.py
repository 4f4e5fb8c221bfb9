"""The Kafka helpers against a real tansu broker: protobuf events round-trip
with their type and trace context, keyed records keep their order, and a
consumer group resumes after its committed offset."""

import asyncio
import uuid

import pytest
from chat4all.events.v1 import event_pb2
from chat4all.messaging.v1 import message_pb2
from opentelemetry import trace

from services.runtime import kafka
from services.runtime.config import load_settings
from services.runtime.tracing import configure_tracing


@pytest.fixture
def settings(kafka_bootstrap):
    # tansu holds a group join for about a third of the session timeout, and a
    # rejoin after a member left for about three: short sessions keep tests quick.
    return load_settings(
        service_name="kafka-test",
        kafka_bootstrap=kafka_bootstrap,
        kafka_session_timeout_ms=1500,
        kafka_heartbeat_interval_ms=300,
    )


@pytest.fixture
async def topic(kafka_bootstrap):
    name = f"test.events.{uuid.uuid4().hex[:8]}"
    assert await kafka.ensure_topics(kafka_bootstrap, {name: 4}) == [name]
    assert await kafka.ensure_topics(kafka_bootstrap, {name: 4}) == []  # idempotent
    return name


@pytest.fixture
async def producer(settings):
    producer = await kafka.open_producer(settings)
    yield producer
    await producer.stop()


def accepted(conversation_id: str, text: str) -> event_pb2.Event:
    event = event_pb2.Event(event_id=str(uuid.uuid4()), conversation_id=conversation_id)
    event.occur_time.GetCurrentTime()
    message = event.message_accepted.message
    message.message_id = str(uuid.uuid4())
    message.conversation_id = conversation_id
    message.content.text = text
    return event


async def consume(settings, topic: str, group_id: str, count: int, commit: bool = True):
    consumer = kafka.open_consumer(settings, topic, group_id=group_id)
    await consumer.start()
    records = []
    try:
        async with asyncio.timeout(30):
            while len(records) < count:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
        if commit:
            await consumer.commit()
    finally:
        await consumer.stop()
    return records


async def test_protobuf_event_round_trips_with_type_and_trace_context(settings, topic, producer):
    configure_tracing("kafka-test")
    event = accepted("conv-1", "olá, mundo")
    with trace.get_tracer("test").start_as_current_span("send") as span:
        metadata = await kafka.publish(producer, topic, event.conversation_id, event)
        sent_trace_id = span.get_span_context().trace_id
    assert metadata.offset >= 0

    [record] = await consume(settings, topic, f"g-{uuid.uuid4().hex}", 1)
    assert record.key == b"conv-1"
    assert kafka.decode(record, event_pb2.Event) == event
    assert kafka.headers_of(record)[kafka.TYPE_HEADER] == "chat4all.events.v1.Event"
    remote = trace.get_current_span(kafka.trace_context(record)).get_span_context()
    assert remote.trace_id == sent_trace_id

    with pytest.raises(kafka.EventTypeMismatch, match="holds chat4all.events.v1.Event"):
        kafka.decode(record, message_pb2.Message)


async def test_records_of_one_key_stay_in_order_on_one_partition(settings, topic, producer):
    sent = [accepted(f"conv-{i % 3}", f"m{i}") for i in range(30)]
    await asyncio.gather(*(kafka.publish(producer, topic, e.conversation_id, e) for e in sent))

    records = await consume(settings, topic, f"g-{uuid.uuid4().hex}", 30)
    by_key: dict[bytes, list] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key, []).append(record)
    for key, keyed in by_key.items():
        assert len({r.partition for r in keyed}) == 1
        texts = [kafka.decode(r, event_pb2.Event).message_accepted.message.content.text for r in keyed]
        expected = [e.message_accepted.message.content.text for e in sent if e.conversation_id.encode() == key]
        assert texts == expected


async def test_group_resumes_after_committed_offsets_only(settings, topic, producer):
    group = f"g-{uuid.uuid4().hex}"
    first = accepted("conv-a", "first")
    await kafka.publish(producer, topic, "conv-a", first)
    assert len(await consume(settings, topic, group, 1, commit=True)) == 1

    second = accepted("conv-a", "second")
    await kafka.publish(producer, topic, "conv-a", second)
    # Read but not committed: a restart must see it again (at-least-once).
    [uncommitted] = await consume(settings, topic, group, 1, commit=False)
    assert kafka.decode(uncommitted, event_pb2.Event) == second
    [again] = await consume(settings, topic, group, 1, commit=True)
    assert kafka.decode(again, event_pb2.Event) == second
