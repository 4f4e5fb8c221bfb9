"""A Kafka consumer that keeps polling while earlier records are still being
handled: one lane per key (conversation) handles its records strictly in
order, lanes run concurrently, so a slow or retrying conversation never blocks
the others. Offsets are committed periodically, and only past fully handled
records (at-least-once; handlers are idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from services.router.offsets import OffsetTracker

log = logging.getLogger("chat4all.router.pipeline")

Handler = Callable[[ConsumerRecord], Awaitable[None]]


class _CommitOnRevoke(ConsumerRebalanceListener):
    def __init__(self, pipeline: "Pipeline") -> None:
        self.pipeline = pipeline

    async def on_partitions_revoked(self, revoked) -> None:
        await self.pipeline.commit()
        self.pipeline.offsets.forget(revoked)

    async def on_partitions_assigned(self, assigned) -> None:
        pass


class Pipeline:
    def __init__(
        self,
        name: str,
        consumer: AIOKafkaConsumer,
        topics: list[str],
        handle: Handler,
        max_in_flight: int = 5000,
        commit_interval: float = 0.2,
        handler_retry_seconds: float = 1.0,
    ) -> None:
        self.name = name
        self.consumer = consumer
        self.topics = topics
        self.handle = handle
        self.max_in_flight = max_in_flight
        self.commit_interval = commit_interval
        self.handler_retry_seconds = handler_retry_seconds
        self.offsets = OffsetTracker()
        self._lanes: dict[bytes | None, asyncio.Queue[ConsumerRecord]] = {}
        self._lane_tasks: set[asyncio.Task] = set()
        self._room = asyncio.Event()
        self._room.set()
        self._stopping = asyncio.Event()
        self._in_flight = 0

    async def run(self) -> None:
        self.consumer.subscribe(self.topics, listener=_CommitOnRevoke(self))
        committer = asyncio.create_task(self._commit_periodically(), name=f"{self.name}-commit")
        try:
            while not self._stopping.is_set():
                await self._room.wait()
                batches = await self.consumer.getmany(timeout_ms=100, max_records=1000)
                for tp, records in batches.items():
                    for record in records:
                        self._accept(tp, record)
        finally:
            committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await committer

    def _accept(self, tp, record: ConsumerRecord) -> None:
        self.offsets.started(tp, record.offset)
        self._in_flight += 1
        if self._in_flight >= self.max_in_flight:
            self._room.clear()  # backpressure: stop polling until lanes catch up
        lane = self._lanes.get(record.key)
        if lane is None:
            lane = self._lanes[record.key] = asyncio.Queue()
            task = asyncio.create_task(self._drain_lane(record.key, lane))
            self._lane_tasks.add(task)
            task.add_done_callback(self._lane_tasks.discard)
        lane.put_nowait(record)

    async def _drain_lane(self, key: bytes | None, lane: asyncio.Queue[ConsumerRecord]) -> None:
        while not lane.empty():
            record = lane.get_nowait()
            await self._handle_until_done(record)
            self.offsets.finished(_tp(record), record.offset)
            self._in_flight -= 1
            if self._in_flight < self.max_in_flight:
                self._room.set()
        del self._lanes[key]

    async def _handle_until_done(self, record: ConsumerRecord) -> None:
        # A handler failure (database or connector unreachable, a bug) must not
        # skip the record: retry it, holding back only its own conversation.
        while True:
            try:
                await self.handle(record)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "handling failed; retrying",
                    extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
                )
                await asyncio.sleep(self.handler_retry_seconds)

    async def commit(self) -> None:
        offsets = self.offsets.committable()
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
            self.offsets.mark_committed(offsets)
        except (CommitFailedError, KafkaError) as error:  # rebalancing: the next owner redoes them
            log.warning("commit failed", extra={"error": repr(error)})

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.commit_interval)
            await self.commit()

    async def stop(self, drain_seconds: float = 10.0) -> None:
        """Stop polling, let lanes finish what they hold (bounded), commit."""
        self._stopping.set()
        self._room.set()
        if self._lane_tasks:
            done, pending = await asyncio.wait(set(self._lane_tasks), timeout=drain_seconds)
            for task in pending:
                task.cancel()
        await self.commit()


def _tp(record: ConsumerRecord) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)
