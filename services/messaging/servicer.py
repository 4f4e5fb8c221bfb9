"""The MessageService gRPC servicer: ingest, history, event streams, dead letters.

Writes of messages and statuses happen in the router; this service validates
and accepts sends (durable in Kafka before it answers) and reads the store.

A client (services/runtime/tenancy.py) reaches only its own conversations, their messages and
dead letters, and its own users' streams: anything else is NOT_FOUND, as an unknown id, or
left out of a listing. Messages and dead letters belong to their conversation's client, which
ConversationService decides (see directory.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.errors import KafkaError
from google.protobuf.timestamp_pb2 import Timestamp
from chat4all.conversations.v1 import service_pb2_grpc as conversation_grpc
from chat4all.files.v1 import service_pb2_grpc as file_grpc
from chat4all.users.v1 import service_pb2_grpc as user_grpc
from chat4all.events.v1 import event_pb2
from chat4all.messaging.v1 import message_pb2, request_response_pb2, service_pb2, service_pb2_grpc

from services.messaging import store, topics, user_cursor
from services.messaging.attachments import Attachments
from services.messaging.directory import Directory
from services.messaging.event_feed import EventFeed
from services.messaging.ingest import Ingest
from services.messaging.membership_watch import MembershipWatch
from services.messaging.settings import MessagingSettings
from services.messaging.user_stream import UserStreams
from services.runtime import kafka, page_tokens
from services.runtime.app import Runtime
from services.runtime.callers import client_id
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.runtime.tenancy import caller_client
from services.runtime.validation import page_size, require_uuid

SERVICE = service_pb2.DESCRIPTOR.services_by_name["MessageService"]
SERVICE_NAME = SERVICE.full_name
MIGRATIONS = Path(__file__).parent / "migrations"
# StreamUserEvents' response header with the cursor of where the stream starts (service.proto).
START_CURSOR_HEADER = "x-chat4all-start-cursor"
# A client's ListDeadLetters without a conversation: dead letters are kept by conversation, not
# by client, so they are read newest first in batches and the caller's kept. One call reads at
# most DEAD_LETTER_SCAN_LIMIT of them, then answers what it kept with a token to read on (a
# page may be short, AIP-158), so another client's many dead letters cannot stall it.
DEAD_LETTER_SCAN_BATCH = 200
DEAD_LETTER_SCAN_LIMIT = 2000


class MessageService(service_pb2_grpc.MessageServiceServicer):
    def __init__(
        self, settings: MessagingSettings, pool, producer, directory: Directory, feed: EventFeed, user_streams: UserStreams,
        attachments: Attachments,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.producer = producer
        self.directory = directory
        self.feed = feed
        self.user_streams = user_streams
        self.ingest = Ingest(pool, producer, directory, attachments, settings.kafka_ack_timeout_seconds)

    async def SendMessage(self, request, context):
        return await self.ingest.send(client_id(context), request, caller_client(context))

    async def GetMessage(self, request, context):
        caller = caller_client(context)
        message_id = require_uuid(request.message_id, "message_id")
        async with self.pool.connection() as conn:
            message = await store.load_message(conn, message_id)
        if message is None or (
            caller is not None and not await self.directory.owns_conversation(caller, message.conversation_id)
        ):
            raise NotFound(f"message {message_id} not found (a message is stored shortly after it is accepted)")
        return request_response_pb2.GetMessageResponse(message=message)

    async def ListMessages(self, request, context):
        conversation_id = require_uuid(request.conversation_id, "conversation_id")
        limit = page_size(request.page_size)
        scope = f"messages:{conversation_id}"
        before = page_tokens.decode(request.page_token, scope)["before"] if request.page_token else None
        await self._require_conversation(conversation_id, caller_client(context))
        async with self.pool.connection() as conn, conn.transaction():
            # One snapshot for the page and the cursor, so following the stream from
            # events_cursor neither repeats nor misses what this page shows.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            rows = await store.list_messages(conn, conversation_id, before, limit + 1)
            head = await store.last_event_seq(conn, conversation_id) if not request.page_token else None
        response = request_response_pb2.ListMessagesResponse(messages=[m for _, m in rows[:limit]])
        if len(rows) > limit:
            response.next_page_token = page_tokens.encode(scope, before=rows[limit - 1][0])
        if head is not None:
            response.events_cursor = _cursor(conversation_id, head)
        return response

    async def StreamConversationEvents(self, request, context):
        conversation_id = require_uuid(request.conversation_id, "conversation_id")
        after = _cursor_seq(conversation_id, request.after_cursor) if request.after_cursor else None
        await self._require_conversation(conversation_id, caller_client(context))
        with self.feed.subscription(conversation_id) as wake:
            if after is None:  # no cursor: from now on
                async with self.pool.connection() as conn:
                    after = await store.last_event_seq(conn, conversation_id)
            while True:
                wake.clear()  # before reading, so a write during the read wakes us again
                async with self.pool.connection() as conn:
                    batch = await store.events_after(conn, conversation_id, after)
                for seq, event in batch:
                    event.cursor = _cursor(conversation_id, seq)
                    yield request_response_pb2.StreamConversationEventsResponse(event=event)
                    after = seq
                if not batch:
                    try:
                        await asyncio.wait_for(wake.wait(), self.settings.stream_poll_seconds)
                    except TimeoutError:
                        pass

    async def StreamUserEvents(self, request, context):
        caller = caller_client(context)
        user_id = require_uuid(request.user_id, "user_id")
        cursor = user_cursor.decode(request.after_cursor, user_id) if request.after_cursor else None
        await self.directory.user(user_id, caller)  # NOT_FOUND for an unknown user, or another client's

        async def positioned(start_cursor: str) -> None:
            # Response headers go out once the stream is positioned: a client that waits for
            # them knows every event from then on will reach it (what "after the stream
            # opens" means for an empty after_cursor). The start cursor lets a client that
            # must not miss what follows (a webhook being created) store that point before
            # any event exists to carry a cursor.
            await context.send_initial_metadata(((START_CURSOR_HEADER, start_cursor),))

        # Closed with the call, so the stream stops listening at once, not when collected.
        async with contextlib.aclosing(self.user_streams.open(user_id, cursor, positioned, caller)) as events:
            async for event in events:
                yield request_response_pb2.StreamUserEventsResponse(event=event)

    async def ListDeadLetters(self, request, context):
        caller = caller_client(context)
        conversation_id = require_uuid(request.conversation_id, "conversation_id") if request.conversation_id else None
        limit = page_size(request.page_size)
        scope = f"dead-letters:{conversation_id}:{request.state}"
        after = None
        if request.page_token:
            position = page_tokens.decode(request.page_token, scope)
            after = (_parse_time(position["t"]), position["id"])
        if caller is not None:
            if conversation_id is None:
                return await self._dead_letters_of(caller, request.state, after, limit, scope)
            if not await self.directory.owns_conversation(caller, conversation_id):
                return request_response_pb2.ListDeadLettersResponse()  # as a conversation without any
        async with self.pool.connection() as conn:
            rows = await store.list_dead_letters(conn, conversation_id, request.state, after, limit + 1)
        response = request_response_pb2.ListDeadLettersResponse(dead_letters=rows[:limit])
        if len(rows) > limit:
            last = rows[limit - 1]
            response.next_page_token = page_tokens.encode(
                scope, t=last.last_failure_time.ToJsonString(), id=last.dead_letter_id
            )
        return response

    async def _dead_letters_of(self, caller: str, state: int, after, limit: int, scope: str):
        """One page of the client's dead letters across its conversations (see DEAD_LETTER_SCAN_LIMIT)."""
        kept: list[message_pb2.DeadLetter] = []
        last_read: message_pb2.DeadLetter | None = None
        read, exhausted = 0, False
        while len(kept) <= limit and read < DEAD_LETTER_SCAN_LIMIT:
            async with self.pool.connection() as conn:
                batch = await store.list_dead_letters(conn, None, state, after, DEAD_LETTER_SCAN_BATCH)
            conversations = list(dict.fromkeys(d.conversation_id for d in batch))
            owned = dict(
                zip(conversations, await asyncio.gather(*(self.directory.owns_conversation(caller, c) for c in conversations)))
            )
            for dead_letter in batch:
                read += 1
                last_read = dead_letter
                after = (dead_letter.last_failure_time.ToDatetime(UTC), dead_letter.dead_letter_id)
                if owned[dead_letter.conversation_id]:
                    kept.append(dead_letter)
                    if len(kept) > limit:  # one more than the page: another page follows
                        break
            if len(batch) < DEAD_LETTER_SCAN_BATCH and len(kept) <= limit:
                exhausted = True
                break
        response = request_response_pb2.ListDeadLettersResponse(dead_letters=kept[:limit])
        if len(kept) > limit:
            resume_after = kept[limit - 1]
        elif not exhausted:  # the scan limit was reached: the next page reads on from there
            resume_after = last_read
        else:
            resume_after = None
        if resume_after is not None:
            response.next_page_token = page_tokens.encode(
                scope, t=resume_after.last_failure_time.ToJsonString(), id=resume_after.dead_letter_id
            )
        return response

    async def ReplayDeadLetter(self, request, context):
        caller = caller_client(context)
        request_id = require_uuid(request.request_id, "request_id", v4=True)
        dead_letter_id = require_uuid(request.dead_letter_id, "dead_letter_id")
        if caller is not None:  # asked before taking the row's lock: ownership never changes
            async with self.pool.connection() as conn:
                conversation_id = await store.dead_letter_conversation(conn, dead_letter_id)
            if conversation_id is None or not await self.directory.owns_conversation(caller, conversation_id):
                raise NotFound(f"dead letter {dead_letter_id} not found")
        async with self.pool.connection() as conn, conn.transaction():
            found = await store.lock_dead_letter(conn, dead_letter_id)
            if found is None:
                raise NotFound(f"dead letter {dead_letter_id} not found")
            dead_letter, replayed_by = found
            if dead_letter.state == message_pb2.DeadLetterState.DEAD_LETTER_STATE_REPLAYED:
                if replayed_by == request_id:  # a retry of the call that replayed it
                    return request_response_pb2.ReplayDeadLetterResponse(dead_letter=dead_letter)
                raise FailedPrecondition(f"dead letter {dead_letter_id} was already replayed")
            message = await store.load_message(conn, dead_letter.message_id)
            replayed = await store.mark_replayed(conn, dead_letter_id, request_id)
            event = event_pb2.Event(event_id=str(uuid.uuid4()), conversation_id=dead_letter.conversation_id)
            event.occur_time.GetCurrentTime()
            event.dead_letter_replayed.dead_letter.CopyFrom(dead_letter)
            event.dead_letter_replayed.message.CopyFrom(message)
            event.dead_letter_replayed.request_id = request_id
            try:
                async with asyncio.timeout(self.settings.kafka_ack_timeout_seconds):
                    await kafka.publish(self.producer, topics.MESSAGES, dead_letter.conversation_id, event)
            except (KafkaError, TimeoutError):
                raise Unavailable("the message broker did not acknowledge; nothing was replayed") from None
        return request_response_pb2.ReplayDeadLetterResponse(dead_letter=replayed)

    async def _require_conversation(self, conversation_id: str, caller: str | None) -> None:
        await self.directory.conversation(conversation_id, caller)


def _cursor(conversation_id: str, seq: int) -> str:
    return page_tokens.encode(f"events:{conversation_id}", q=seq)


def _cursor_seq(conversation_id: str, cursor: str) -> int:
    position = page_tokens.decode(cursor, f"events:{conversation_id}", field="after_cursor")
    if not isinstance(position.get("q"), int):
        raise InvalidArgument("after_cursor is malformed")
    return position["q"]


def _parse_time(value: str) -> datetime:
    stamp = Timestamp()
    stamp.FromJsonString(value)
    return stamp.ToDatetime(UTC)


async def setup(runtime: Runtime) -> None:
    settings: MessagingSettings = runtime.settings  # type: ignore[assignment]
    pool = await runtime.postgres("messaging", MIGRATIONS)
    producer = await runtime.kafka_producer()
    redis = await runtime.redis()
    conversations = conversation_grpc.ConversationServiceStub(await runtime.channel(settings.conversations_target))
    users = user_grpc.UserServiceStub(await runtime.channel(settings.users_target))
    directory = Directory(redis, conversations, users)
    await directory.start()
    runtime.on_shutdown(directory.stop)
    feed = EventFeed(settings.postgres_dsn)
    await feed.start()
    runtime.on_shutdown(feed.stop)
    watch = MembershipWatch(redis, directory, feed)
    await watch.start()
    runtime.on_shutdown(watch.stop)
    user_streams = UserStreams(settings, pool, directory, feed, watch)
    attachments = Attachments(file_grpc.FileServiceStub(await runtime.channel(settings.files_target)))
    servicer = MessageService(settings, pool, producer, directory, feed, user_streams, attachments)
    runtime.add_servicer(service_pb2_grpc.add_MessageServiceServicer_to_server, servicer, SERVICE_NAME)
