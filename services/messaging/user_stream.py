"""StreamUserEvents: the events of every conversation a user is a member of, as
one stream that resumes from a cursor with no gap and no duplicate.

The stream is a merge of per-conversation logs. It keeps, per conversation it
follows, the seq of the last event it delivered (user_positions.py); every
event goes out with the cursor of the whole vector after it (user_cursor.py),
so a reconnect resumes every conversation exactly where it stood. Within a
conversation, events leave in seq order; across conversations they are merged
by occur_time among the events read together, which is close to chronological
but, as the contract says, not an order to rely on.

Which conversations: the user's memberships, listed from the conversation
service when the stream opens and kept current by the membership watch
(membership_watch.py) and by a periodic re-listing. A conversation joined
later starts after the last event that occurred before the join
(user_stream_store.starts_after_join); one left is dropped at once, and events
already read from it but not yet sent are not sent.

Whose conversations: a client's stream (services/runtime/tenancy.py) lists the user's
conversations on the client's behalf and takes a join only into a conversation of that
client, so it never carries another client's events, even if an internal call made the user
a member of one.

When to read: the event feed's notifications say which conversations grew, so
a wake-up reads only those. Every user_stream_refresh_seconds a stream lists
its user's conversations again and reads all of them once, in case an
announcement or a notification was lost (a user may follow thousands of
conversations, so this is not done at the conversation streams' faster pace).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, timedelta

import grpc
import psycopg
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.messaging.v1 import message_pb2
from psycopg_pool import AsyncConnectionPool

from services.messaging import user_cursor, user_stream_store
from services.messaging.directory import Directory
from services.messaging.event_feed import EventFeed
from services.messaging.membership_watch import MembershipWatch
from services.messaging.settings import MessagingSettings
from services.messaging.user_cursor import UserCursor
from services.messaging.user_positions import StreamPositions
from services.runtime.errors import ServiceError, Unavailable

log = logging.getLogger("chat4all.messaging.user_stream")

# How much one read takes: conversations per statement and events per conversation. A
# conversation that had more stays marked and is read again right after the others.
CONVERSATIONS_PER_READ = 64
EVENTS_PER_CONVERSATION = 100
# Checkpoints are pruned by whichever stream stores one, at most this often per process.
PRUNE_EVERY_SECONDS = 3600.0


class OutOfRange(ServiceError):
    code = grpc.StatusCode.OUT_OF_RANGE


class UserStreams:
    """What every user stream of this process shares."""

    def __init__(
        self,
        settings: MessagingSettings,
        pool: AsyncConnectionPool,
        directory: Directory,
        feed: EventFeed,
        watch: MembershipWatch,
    ) -> None:
        self.settings, self.pool, self.directory, self.feed, self.watch = settings, pool, directory, feed, watch
        self._last_prune = float("-inf")

    def open(
        self,
        user_id: str,
        cursor: UserCursor | None,
        ready: Callable[[str], Awaitable[None]],
        caller: str | None = None,
    ) -> AsyncIterator[message_pb2.ConversationEvent]:
        """The user's events after `cursor` (None: after now), in the conversations of `caller`
        (None: an internal call, all of them). `ready` is awaited once the stream is positioned,
        with the cursor of that position: from then on, every new event will be delivered, and
        resuming from that cursor later delivers the same events."""
        return UserEventStream(self, user_id, caller).events(cursor, ready)

    async def save_checkpoint(self, user_id: str, checkpoint_id: bytes, payload: bytes) -> None:
        async with self.pool.connection() as conn:
            await user_stream_store.save_checkpoint(conn, user_id, checkpoint_id, payload)
            if time.monotonic() - self._last_prune >= PRUNE_EVERY_SECONDS:
                self._last_prune = time.monotonic()
                retention = timedelta(days=self.settings.user_stream_checkpoint_retention_days)
                pruned = await user_stream_store.prune_checkpoints(conn, retention)
                if pruned:
                    log.info("pruned user stream checkpoints", extra={"count": pruned})


class UserEventStream:
    """One StreamUserEvents call."""

    def __init__(self, shared: UserStreams, user_id: str, caller: str | None = None) -> None:
        self.shared = shared
        self.user_id = user_id
        self.caller = caller
        self.positions = StreamPositions(user_id)
        # Join time of the membership each followed conversation is followed under: a
        # different one means the user left and joined again.
        self.joined: dict[str, conversation_pb2.Member] = {}
        self.dirty: set[str] = set()  # followed conversations whose log may have grown
        self.changes: dict[str, conversation_pb2.Member | None] = {}  # memberships to apply
        self.refresh_due = False
        # While a re-listing runs: conversations whose change was heard meanwhile, which
        # the (possibly older) listing must not overrule.
        self._heard_during_listing: set[str] | None = None
        self.wake = asyncio.Event()
        self._listening: set[str] = set()  # conversations whose growth the event feed tells us

    # Signals from the event feed and the membership watch -------------------------------------

    def follows(self, conversation_id: str) -> bool:
        return self.positions.follows(conversation_id)

    def membership_changed(self, conversation_id: str, member: conversation_pb2.Member | None) -> None:
        if self._heard_during_listing is not None:
            self._heard_during_listing.add(conversation_id)
        if conversation_id not in self.changes and self._unchanged(conversation_id, member):
            return  # another member came or went: nothing to do, and no reason to interrupt a read
        self.changes[conversation_id] = member
        self.wake.set()

    def _unchanged(self, conversation_id: str, member: conversation_pb2.Member | None) -> bool:
        if member is None:
            return not self.follows(conversation_id)
        return self.follows(conversation_id) and self.joined[conversation_id].join_time == member.join_time

    def refresh_memberships(self) -> None:
        self.refresh_due = True
        self.wake.set()

    def _grew(self, conversation_id: str) -> None:
        self.dirty.add(conversation_id)
        self.wake.set()

    def _listen(self, conversation_id: str) -> None:
        self._listening.add(conversation_id)
        self.shared.feed.listen(conversation_id, self._grew)

    def _unlisten(self, conversation_id: str) -> None:
        self._listening.discard(conversation_id)
        self.shared.feed.unlisten(conversation_id, self._grew)

    # The stream -----------------------------------------------------------------------------

    async def events(
        self, cursor: UserCursor | None, ready: Callable[[str], Awaitable[None]]
    ) -> AsyncIterator[message_pb2.ConversationEvent]:
        try:
            with self.shared.watch.watching(self):
                await self._open(cursor)
                await ready(await self._cursor_of_position())
                async for event in self._follow():
                    yield event
        except psycopg.OperationalError:
            raise Unavailable("the event store is unreachable; reconnect with the last cursor") from None
        finally:
            for conversation_id in self._listening:
                self.shared.feed.unlisten(conversation_id, self._grew)

    async def _open(self, cursor: UserCursor | None) -> None:
        memberships = await self.shared.directory.memberships(self.user_id, self.caller)
        # Listen before reading positions: whatever is appended after the read wakes us.
        for conversation_id in memberships:
            self._listen(conversation_id)
        async with self.shared.pool.connection() as conn:
            if cursor is None:
                starts = await user_stream_store.heads(conn, memberships)
                base: dict[str, int] = {}
            else:
                base = await self._checkpoint_of(conn, cursor)
                vector = cursor.vector(base)
                starts = await user_stream_store.starts_after_join(
                    conn, [(c, vector.get(c, 0), m.join_time.ToDatetime(UTC)) for c, m in memberships.items()]
                )
        self.positions = StreamPositions(self.user_id, cursor.checkpoint_id if cursor else None, base)
        for conversation_id, member in memberships.items():
            self.positions.set(conversation_id, starts[conversation_id])
            self.joined[conversation_id] = member
        # From a cursor there may be a backlog everywhere; from now, only what gets notified.
        if cursor is not None:
            self.dirty.update(memberships)

    async def _checkpoint_of(self, conn: psycopg.AsyncConnection, cursor: UserCursor) -> dict[str, int]:
        if cursor.checkpoint_id is None:
            return {}
        payload = await user_stream_store.load_checkpoint(conn, self.user_id, cursor.checkpoint_id)
        if payload is None:
            raise OutOfRange(
                "after_cursor is older than the retained stream positions; reload each conversation"
                " with ListMessages and open the user stream without a cursor"
            )
        return user_cursor.decode_positions(payload)

    async def _follow(self) -> AsyncIterator[message_pb2.ConversationEvent]:
        period = self.shared.settings.user_stream_refresh_seconds
        next_check = time.monotonic() + _jitter(period)
        while True:
            self.wake.clear()  # before reading, so a signal during the read wakes us again
            if self.refresh_due or time.monotonic() >= next_check:
                self.refresh_due = False
                await self._list_again()
                # The safety net also re-reads every log once, in case a notification was lost
                # (cheap: one index probe per conversation without news).
                self.dirty.update(self.positions.current)
                next_check = time.monotonic() + _jitter(period)
            if self.changes:
                await self._apply_changes()
            sent = 0
            async for event in self._read_some():
                yield event
                sent += 1
            if sent or self.dirty or self.changes or self.refresh_due:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(0.0, next_check - time.monotonic()))

    async def _read_some(self) -> AsyncIterator[message_pb2.ConversationEvent]:
        batch = list(self.dirty)[:CONVERSATIONS_PER_READ]
        self.dirty.difference_update(batch)
        todo = [c for c in batch if self.follows(c)]
        if not todo:
            return
        async with self.shared.pool.connection() as conn:
            found = await user_stream_store.events_after_each(
                conn, {c: self.positions.current[c] for c in todo}, EVENTS_PER_CONVERSATION
            )
        for conversation_id, events in found.items():
            if len(events) == EVENTS_PER_CONVERSATION:
                self.dirty.add(conversation_id)  # more may follow
        # A k-way merge only ever takes the head of each list, so each conversation's own
        # order is kept whatever its occur_times are.
        merged = heapq.merge(
            *([(c, seq, event) for seq, event in events] for c, events in found.items()),
            key=lambda item: item[2].occur_time.ToNanoseconds(),
        )
        for conversation_id, seq, event in merged:
            if self.changes:
                # Memberships changed under us: apply them first (a conversation just left
                # must send nothing more); whatever is left is read again, from the positions
                # the events sent so far moved.
                self.dirty.update(found)
                return
            if not self.follows(conversation_id) or seq <= self.positions.current[conversation_id]:
                continue
            self.positions.set(conversation_id, seq)
            event.cursor = await self._cursor_of_position()
            yield event

    async def _cursor_of_position(self) -> str:
        """The cursor of where the stream stands now; stores a checkpoint first if the
        positions no longer fit in a cursor."""
        if self.positions.needs_checkpoint:
            checkpoint_id, payload = self.positions.checkpoint()
            await self.shared.save_checkpoint(self.user_id, checkpoint_id, payload)
            self.positions.checkpointed(checkpoint_id)
        return self.positions.cursor()

    async def _apply_changes(self) -> None:
        changes, self.changes = self.changes, {}
        joins: dict[str, conversation_pb2.Member] = {}
        for conversation_id, member in changes.items():
            if member is None:
                if self.follows(conversation_id):
                    self.positions.drop(conversation_id)
                    self.joined.pop(conversation_id, None)
                    self.dirty.discard(conversation_id)
                    self._unlisten(conversation_id)
            elif not self._unchanged(conversation_id, member):
                joins[conversation_id] = member
        if self.caller is not None and joins:  # the watch reads members past the client's view
            caller = self.caller
            owned = await asyncio.gather(*(self.shared.directory.owns_conversation(caller, c) for c in joins))
            joins = {c: m for (c, m), mine in zip(joins.items(), owned, strict=True) if mine}
        if not joins:
            return
        for conversation_id in joins:
            self._listen(conversation_id)
        async with self.shared.pool.connection() as conn:
            starts = await user_stream_store.starts_after_join(
                conn,
                [(c, self.positions.current.get(c, 0), m.join_time.ToDatetime(UTC)) for c, m in joins.items()],
            )
        for conversation_id, member in joins.items():
            self.positions.set(conversation_id, starts[conversation_id])
            self.joined[conversation_id] = member
            self.dirty.add(conversation_id)

    async def _list_again(self) -> None:
        """The periodic safety net: the listing decides every conversation no change was heard
        for while it ran (such a change is at least as new as the listing)."""
        self._heard_during_listing = set()
        try:
            listing = await self.shared.directory.memberships(self.user_id, self.caller)
        except ServiceError as error:
            log.warning("cannot list the user's conversations; keeping the ones known", extra={"error": error.message})
            return
        finally:
            heard, self._heard_during_listing = self._heard_during_listing, None
        for conversation_id in (set(listing) | set(self.positions.current) | set(self.changes)) - heard:
            member = listing.get(conversation_id)
            if conversation_id in self.changes or not self._unchanged(conversation_id, member):
                self.changes[conversation_id] = member


def _jitter(seconds: float) -> float:
    """Spread the re-listings of streams opened together."""
    return seconds * random.uniform(0.9, 1.1)
