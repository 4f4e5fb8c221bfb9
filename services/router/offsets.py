"""Which Kafka offsets may be committed when records finish out of order.

Conversations are handled concurrently, so records of one partition finish in
any order; an offset is committed only once every earlier record of its
partition is fully handled, so a crash never skips an unhandled record.
"""

from __future__ import annotations

from collections import deque

from aiokafka import TopicPartition


class _Partition:
    def __init__(self) -> None:
        self.in_flight: deque[int] = deque()  # offsets in arrival (= increasing) order
        self.done: set[int] = set()
        self.next_to_commit: int | None = None
        self.committed: int | None = None

    def advance(self) -> None:
        while self.in_flight and self.in_flight[0] in self.done:
            offset = self.in_flight.popleft()
            self.done.discard(offset)
            self.next_to_commit = offset + 1


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, _Partition] = {}

    def started(self, tp: TopicPartition, offset: int) -> None:
        self._partitions.setdefault(tp, _Partition()).in_flight.append(offset)

    def finished(self, tp: TopicPartition, offset: int) -> None:
        partition = self._partitions.get(tp)
        if partition is None:  # revoked meanwhile: its new owner handles it again
            return
        partition.done.add(offset)
        partition.advance()

    def committable(self) -> dict[TopicPartition, int]:
        """Offsets to commit now: the ones that moved since the last call."""
        ready = {}
        for tp, partition in self._partitions.items():
            if partition.next_to_commit is not None and partition.next_to_commit != partition.committed:
                ready[tp] = partition.next_to_commit
        return ready

    def mark_committed(self, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            if tp in self._partitions:
                self._partitions[tp].committed = offset

    def forget(self, partitions) -> None:
        for tp in partitions:
            self._partitions.pop(tp, None)

    def in_flight(self) -> int:
        return sum(len(p.in_flight) for p in self._partitions.values())
