"""Tells the user streams open in this process when their users join or leave a
conversation, so a stream follows exactly the user's conversations.

Three signals, fastest first:
- The conversation service announces every membership change (AddMember,
  RemoveMember) on change_feed.CONVERSATIONS right after it commits. The watch
  re-reads that conversation from the source (the Directory's cache may not
  have heard yet: two subscriptions to one announcement arrive in any order)
  and tells each local stream whose user joined or left.
- A conversation's log grows and one of its members has a local stream that
  does not follow it: a conversation created with the user in it is not
  announced, and its first event is when it starts to matter. The cached
  conversation says who the members are; a fresh read confirms before any
  stream is told, so a stale cache entry never brings back a conversation the
  user left.
- Each stream lists its user's conversations again now and then (see
  user_stream.py), for announcements lost while Redis was unreachable; the
  watch asks every stream to do so when its subscription comes back.

Work runs on one task, one conversation at a time, in arrival order, so two
announcements of one conversation are applied in the order they were made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Protocol

import redis.asyncio as redis
from chat4all.conversations.v1 import message_pb2 as conversation_pb2

from services.messaging.directory import Directory
from services.messaging.event_feed import EventFeed
from services.runtime import change_feed
from services.runtime.errors import NotFound, ServiceError

log = logging.getLogger("chat4all.messaging.membership")


class MembershipListener(Protocol):
    """What the watch needs from a user stream."""

    user_id: str

    def follows(self, conversation_id: str) -> bool: ...

    def membership_changed(self, conversation_id: str, member: conversation_pb2.Member | None) -> None:
        """The user's membership now (None: not a member), read from the source after a change."""

    def refresh_memberships(self) -> None:
        """Changes may have been missed: list the user's conversations again."""


class MembershipWatch:
    def __init__(self, client: redis.Redis, directory: Directory, feed: EventFeed) -> None:
        self.client, self.directory, self.feed = client, directory, feed
        self._streams: dict[str, set[MembershipListener]] = defaultdict(set)
        # Conversations waiting to be looked at -> whether a fresh read is due anyway
        # (an announcement); a conversation waits at most once however often it is named.
        self._pending: dict[str, bool] = {}
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._subscribed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._feed_subscription = contextlib.ExitStack()

    async def start(self) -> None:
        self._feed_subscription.enter_context(self.feed.listening_to_all(self._log_grew))
        self._tasks = [
            asyncio.create_task(self._listen(), name="membership-watch announcements"),
            asyncio.create_task(self._work(), name="membership-watch lookups"),
        ]
        await asyncio.wait_for(self._subscribed.wait(), 10)

    async def stop(self) -> None:
        self._feed_subscription.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @contextlib.contextmanager
    def watching(self, stream: MembershipListener) -> Iterator[None]:
        self._streams[stream.user_id].add(stream)
        try:
            yield
        finally:
            streams = self._streams.get(stream.user_id)
            if streams is not None:
                streams.discard(stream)
                if not streams:
                    del self._streams[stream.user_id]

    # Signals --------------------------------------------------------------------------------

    def _log_grew(self, conversation_id: str) -> None:
        if self._streams:  # nobody to tell: not even a cache lookup
            self._enqueue(conversation_id, fresh=False)

    def _enqueue(self, conversation_id: str, fresh: bool) -> None:
        if conversation_id in self._pending:
            self._pending[conversation_id] |= fresh
            return
        self._pending[conversation_id] = fresh
        self._ready.put_nowait(conversation_id)

    async def _listen(self) -> None:
        first = True
        while True:
            try:
                async with self.client.pubsub() as pubsub:
                    await pubsub.subscribe(change_feed.CONVERSATIONS)
                    self._subscribed.set()
                    if not first:  # announcements made while we were away are lost
                        self._refresh_everyone()
                    first = False
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            data = message["data"]
                            self._enqueue(data.decode() if isinstance(data, bytes) else data, fresh=True)
            except (redis.ConnectionError, OSError) as error:
                log.warning("membership announcements lost; resubscribing", extra={"error": str(error)})
            await asyncio.sleep(1)

    def _refresh_everyone(self) -> None:
        for streams in list(self._streams.values()):
            for stream in list(streams):
                stream.refresh_memberships()

    # Lookups --------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            conversation_id = await self._ready.get()
            fresh = self._pending.pop(conversation_id, True)
            try:
                await self._look_at(conversation_id, fresh)
            except ServiceError as error:  # the conversation service is unreachable
                log.warning(
                    "cannot read a conversation's members", extra={"conversation_id": conversation_id, "error": error.message}
                )
                if fresh:  # an announced change went unread: let the streams list again later
                    self._refresh_everyone()
            except Exception:
                log.exception("membership lookup failed", extra={"conversation_id": conversation_id})

    async def _look_at(self, conversation_id: str, fresh: bool) -> None:
        if not fresh and not await self._has_unfollowing_member(conversation_id):
            return
        try:
            conversation = await self.directory.fresh_conversation(conversation_id)
            members = {m.user_id: m for m in conversation.members}
        except NotFound:
            members = {}
        for streams in list(self._streams.values()):
            for stream in list(streams):
                member = members.get(stream.user_id)
                if member is not None or stream.follows(conversation_id):
                    stream.membership_changed(conversation_id, member)

    async def _has_unfollowing_member(self, conversation_id: str) -> bool:
        """Whether a member of the conversation (as cached) has a local stream not following it."""
        try:
            conversation = await self.directory.conversation(conversation_id)
        except NotFound:
            return False
        return any(
            not stream.follows(conversation_id)
            for member in conversation.members
            for stream in self._streams.get(member.user_id, ())
        )
