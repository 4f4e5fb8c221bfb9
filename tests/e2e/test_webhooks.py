"""Webhooks on the real processes: users, conversations, messaging and the router (the e2e
stack) plus the webhooks service as a subprocess, POSTing to a real HTTP endpoint in the test.

Small backoff settings make the retry schedule run in a fraction of a second; the signature is
recomputed here from the documented scheme, not with the service's own code.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import time
import uuid

import grpc
import pytest
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.conversations.v1 import request_response_pb2 as conversation_requests
from chat4all.messaging.v1 import request_response_pb2 as messaging_requests
from chat4all.webhooks.v1 import message_pb2 as pb
from chat4all.webhooks.v1 import request_response_pb2 as rr
from chat4all.webhooks.v1 import service_pb2_grpc
from google.protobuf import json_format

from tests.e2e.conftest import Api
from tests.e2e.test_internal_delivery import send_request
from tests.e2e.test_user_streams import content, conversation_events, wait_until_sent
from tests.services.clients import AsClient
from tests.support.webhook_receiver import WebhookReceiver, always, fail_first

MAX_ATTEMPTS = 4
MESSAGE_CREATED = [pb.WEBHOOK_EVENT_TYPE_MESSAGE_CREATED]
State = pb.WebhookDeliveryState


@pytest.fixture(scope="module")
def webhooks_env(stack) -> dict[str, str]:
    return {
        "C4A_MESSAGING_TARGET": stack.services["messaging"].target,
        "C4A_DELIVER_TO_PRIVATE_NETWORKS": "true",  # the endpoint is on loopback
        "C4A_DELIVERY_TIMEOUT_SECONDS": "2",
        "C4A_DELIVERY_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "C4A_DELIVERY_BACKOFF_BASE_SECONDS": "0.05",
        "C4A_DELIVERY_BACKOFF_MAX_SECONDS": "0.2",
        "C4A_DELIVERY_POLL_SECONDS": "0.2",
        "C4A_SOURCE_SCAN_SECONDS": "0.5",
        "C4A_SOURCE_LEASE_SECONDS": "5",
    }


@pytest.fixture(scope="module")
def webhooks_service(stack, webhooks_env):
    return stack.start("webhooks", "services.webhooks", webhooks_env)


@pytest.fixture(scope="module")
async def receiver():
    receiver = WebhookReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


class Hooks:
    """WebhookService as one client sees it (each test is a client of its own)."""

    def __init__(self, target: str, client: str | None = None) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.stub = service_pb2_grpc.WebhookServiceStub(self.channel)
        self.client = client or f"client-{uuid.uuid4().hex[:8]}"
        self.metadata = (("x-chat4all-client-id", self.client),)

    async def create(self, url: str, conversations: list[str], types=(), request_id: str | None = None, metadata=None):
        request = rr.CreateWebhookRequest(
            request_id=request_id or str(uuid.uuid4()),
            url=url,
            filter=pb.WebhookFilter(conversations=pb.ConversationSet(conversation_ids=conversations), event_types=list(types)),
        )
        return await self.stub.CreateWebhook(request, metadata=metadata or self.metadata)

    async def create_for_user(self, url: str, user_id: str, types=()):
        request = rr.CreateWebhookRequest(
            request_id=str(uuid.uuid4()), url=url, filter=pb.WebhookFilter(user_id=user_id, event_types=list(types))
        )
        return await self.stub.CreateWebhook(request, metadata=self.metadata)

    async def deliveries(self, webhook_id: str, state: int = 0) -> list[pb.WebhookDelivery]:
        reply = await self.stub.ListWebhookDeliveries(
            rr.ListWebhookDeliveriesRequest(webhook_id=webhook_id, state=state, page_size=1000), metadata=self.metadata
        )
        return list(reply.deliveries)

    async def delete(self, webhook_id: str, request_id: str | None = None) -> None:
        await self.stub.DeleteWebhook(
            rr.DeleteWebhookRequest(request_id=request_id or str(uuid.uuid4()), webhook_id=webhook_id), metadata=self.metadata
        )


@pytest.fixture
async def hooks(stack, webhooks_service):
    client = Hooks(stack.services["webhooks"].target)  # the current process: a test restarts it
    yield client
    await client.channel.close()


def api_of(stack, client: str) -> Api:
    """The users, conversations and messages API as `client` (a webhook scopes the client's own)."""
    api = Api(stack)
    api.users, api.conversations, api.messages = (AsClient(s, client) for s in (api.users, api.conversations, api.messages))
    return api


@pytest.fixture
async def api(stack, hooks):
    """The test's client's own users and conversations, which its webhooks may follow."""
    client = api_of(stack, hooks.client)
    yield client
    await client.close()


async def conversation(api) -> tuple[str, str]:
    alice, bob = await api.user("Alice"), await api.user("Bob")
    return await api.conversation(alice, bob), alice


async def send(api, conversation_id: str, sender: str, text: str) -> str:
    return (await api.messages.SendMessage(send_request(conversation_id, sender, text))).message_id


def event_of(received) -> pb.WebhookEvent:
    return json_format.Parse(received.body, pb.WebhookEvent())


def texts(received: list) -> list[str]:
    return [event_of(r).event.message_created.content.text for r in received]


async def wait_for_deliveries(hooks: Hooks, webhook_id: str, condition, timeout: float = 30) -> list[pb.WebhookDelivery]:
    deadline = time.monotonic() + timeout
    while True:
        found = await hooks.deliveries(webhook_id)
        if condition(found):
            return found
        assert time.monotonic() < deadline, f"deliveries never matched: {found}"
        await asyncio.sleep(0.1)


async def test_a_recovering_endpoint_gets_each_event_once_signed_and_in_order(api, hooks, receiver):
    conversation_id, alice = await conversation(api)
    receiver.answer("recovers", fail_first(2, status=500))
    created = await hooks.create(receiver.url("recovers"), [conversation_id], MESSAGE_CREATED)
    webhook_id, secret = created.webhook.webhook_id, created.signing_secret
    first = await send(api, conversation_id, alice, "first")
    second = await send(api, conversation_id, alice, "second")

    await receiver.wait_for(lambda: len(receiver.accepted("recovers")) == 2, what="both events accepted")
    requests = receiver.to("recovers")
    assert [r.status for r in requests] == [500, 500, 200, 200]
    # The second event waited until the first was accepted: order within the conversation.
    assert texts(requests) == ["first", "first", "first", "second"]
    assert [r.headers["X-Chat4All-Delivery-Attempt"] for r in requests] == ["1", "2", "3", "1"]

    for received in requests:
        # The documented scheme, recomputed: HMAC-SHA256(secret, timestamp + "." + raw body), hex, after "v1=".
        timestamp = received.headers["X-Chat4All-Timestamp"]
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + received.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(received.headers["X-Chat4All-Signature"], f"v1={expected}")
        assert abs(time.time() - int(timestamp)) < 300
        assert received.headers["Content-Type"] == "application/json"
        assert received.headers["X-Chat4All-Webhook-Id"] == webhook_id
        assert received.headers["X-Chat4All-Event-Type"] == "message_created"
        body = event_of(received)
        assert received.headers["X-Chat4All-Event-Id"] == body.event_id
        assert body.webhook_id == webhook_id and body.event_type == pb.WEBHOOK_EVENT_TYPE_MESSAGE_CREATED
        assert body.event.conversation_id == conversation_id
    # Every attempt of one event carries the same id and the same bytes; two events, two ids.
    assert len({r.headers["X-Chat4All-Event-Id"] for r in requests[:3]}) == 1
    assert len({r.body for r in requests[:3]}) == 1
    assert requests[0].headers["X-Chat4All-Event-Id"] != requests[3].headers["X-Chat4All-Event-Id"]
    assert [event_of(r).event.message_created.message_id for r in receiver.accepted("recovers")] == [first, second]
    assert json.loads(requests[3].body)["event"]["messageCreated"]["content"]["text"] == "second"  # REST JSON names

    log = await wait_for_deliveries(hooks, webhook_id, lambda d: len(d) == 2 and all(x.state == State.WEBHOOK_DELIVERY_STATE_DELIVERED for x in d))
    newest, oldest = log
    assert oldest.event_id == requests[0].headers["X-Chat4All-Event-Id"]
    assert oldest.attempt_count == 3 and oldest.last_http_status == 200 and oldest.last_error == ""
    assert [(a.attempt_number, a.http_status) for a in oldest.attempts] == [(1, 500), (2, 500), (3, 200)]
    assert "500" in oldest.attempts[0].error and "receiver says no" in oldest.attempts[0].error
    assert all(a.HasField("duration") for a in oldest.attempts)
    assert oldest.HasField("complete_time") and not oldest.HasField("next_attempt_time")
    assert newest.attempt_count == 1 and newest.conversation_id == conversation_id
    assert newest.attempts[0].start_time.ToNanoseconds() >= oldest.complete_time.ToNanoseconds() - 10**8


async def test_an_endpoint_that_never_recovers_ends_dead_lettered_and_the_next_event_goes_on(api, hooks, receiver):
    conversation_id, alice = await conversation(api)
    receiver.answer("down", always(503))
    created = await hooks.create(receiver.url("down"), [conversation_id], MESSAGE_CREATED)
    webhook_id = created.webhook.webhook_id
    await send(api, conversation_id, alice, "lost")

    dead = await wait_for_deliveries(hooks, webhook_id, lambda d: d and d[0].state == State.WEBHOOK_DELIVERY_STATE_DEAD_LETTERED)
    [delivery] = dead
    assert delivery.attempt_count == MAX_ATTEMPTS
    assert [a.http_status for a in delivery.attempts] == [503] * MAX_ATTEMPTS
    assert delivery.last_http_status == 503 and "receiver says no (503)" in delivery.last_error
    assert delivery.HasField("complete_time") and not delivery.HasField("next_attempt_time")
    assert len(receiver.to("down")) == MAX_ATTEMPTS
    assert await hooks.deliveries(webhook_id, State.WEBHOOK_DELIVERY_STATE_DEAD_LETTERED) == dead
    assert await hooks.deliveries(webhook_id, State.WEBHOOK_DELIVERY_STATE_DELIVERED) == []

    # A dead letter does not hold the conversation up: once the endpoint is back, the next event arrives.
    receiver.answer("down", lambda n: 200)
    await send(api, conversation_id, alice, "after")
    await receiver.wait_for(lambda: len(receiver.accepted("down")) == 1, what="the next event")
    assert texts(receiver.accepted("down")) == ["after"]
    assert len(receiver.to("down")) == MAX_ATTEMPTS + 1  # the dead letter is never sent again


async def test_an_unreachable_endpoint_is_logged_with_the_connection_error(api, hooks, receiver):
    conversation_id, alice = await conversation(api)
    created = await hooks.create("http://127.0.0.1:1/nobody-listens", [conversation_id], MESSAGE_CREATED)
    await send(api, conversation_id, alice, "into the void")
    [delivery] = await wait_for_deliveries(
        hooks, created.webhook.webhook_id, lambda d: d and d[0].state == State.WEBHOOK_DELIVERY_STATE_DEAD_LETTERED
    )
    assert delivery.last_http_status == 0 and "127.0.0.1:1" in delivery.last_error


async def test_deleting_a_webhook_stops_its_deliveries(api, hooks, receiver):
    conversation_id, alice = await conversation(api)
    doomed = await hooks.create(receiver.url("doomed"), [conversation_id], MESSAGE_CREATED)
    control = await hooks.create(receiver.url("control"), [conversation_id], MESSAGE_CREATED)
    await send(api, conversation_id, alice, "before")
    await receiver.wait_for(lambda: receiver.accepted("doomed") and receiver.accepted("control"), what="both webhooks")
    # One event, one id, whichever webhook it goes to.
    assert receiver.to("doomed")[0].headers["X-Chat4All-Event-Id"] == receiver.to("control")[0].headers["X-Chat4All-Event-Id"]

    request_id = str(uuid.uuid4())
    await hooks.delete(doomed.webhook.webhook_id, request_id)
    await hooks.delete(doomed.webhook.webhook_id, request_id)  # a retry answers as the first call did
    await send(api, conversation_id, alice, "after")
    await receiver.wait_for(lambda: len(receiver.accepted("control")) == 2, what="the control webhook")
    await asyncio.sleep(1.0)  # the deleted webhook would have had time too
    assert texts(receiver.to("doomed")) == ["before"]
    for call in (
        hooks.stub.GetWebhook(rr.GetWebhookRequest(webhook_id=doomed.webhook.webhook_id), metadata=hooks.metadata),
        hooks.deliveries(doomed.webhook.webhook_id),
        hooks.delete(doomed.webhook.webhook_id),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_every_event_type_unless_filtered(api, hooks, receiver):
    conversation_id, alice = await conversation(api)
    created = await hooks.create(receiver.url("everything"), [conversation_id])
    assert list(created.webhook.filter.event_types) == []
    await send(api, conversation_id, alice, "hello")
    # The message, then Bob's delivery reaching SENT, in conversation order.
    await receiver.wait_for(
        lambda: any(event_of(r).event.HasField("delivery_status_changed") for r in receiver.accepted("everything")),
        what="a delivery status event",
    )
    received = receiver.accepted("everything")
    kinds = [r.headers["X-Chat4All-Event-Type"] for r in received]
    assert kinds[0] == "message_created" and set(kinds[1:]) == {"delivery_status_changed"}
    assert [event_of(r).event_type for r in received] == [
        pb.WEBHOOK_EVENT_TYPE_MESSAGE_CREATED, *[pb.WEBHOOK_EVENT_TYPE_DELIVERY_STATUS_CHANGED] * (len(received) - 1)
    ]
    assert event_of(received[1]).event.delivery_status_changed.message_id == event_of(received[0]).event.message_created.message_id


async def test_a_restart_loses_nothing_and_sends_nothing_twice(stack, webhooks_env, api, hooks, receiver):
    conversation_id, alice = await conversation(api)
    created = await hooks.create(receiver.url("restart"), [conversation_id], MESSAGE_CREATED)
    await send(api, conversation_id, alice, "m1")
    await receiver.wait_for(lambda: len(receiver.accepted("restart")) == 1, what="m1")

    await asyncio.to_thread(stack.stop, "webhooks")
    for text in ("m2", "m3"):  # while no dispatcher runs
        await send(api, conversation_id, alice, text)
    await asyncio.sleep(0.5)
    service = await asyncio.to_thread(stack.start, "webhooks", "services.webhooks", webhooks_env)

    await receiver.wait_for(lambda: len(receiver.accepted("restart")) == 3, what="m2 and m3 after the restart")
    await send(api, conversation_id, alice, "m4")
    await receiver.wait_for(lambda: len(receiver.accepted("restart")) == 4, what="m4")
    await asyncio.sleep(0.5)
    assert texts(receiver.to("restart")) == ["m1", "m2", "m3", "m4"]

    restarted = Hooks(service.target, hooks.client)
    try:
        log = await restarted.deliveries(created.webhook.webhook_id)
    finally:
        await restarted.channel.close()
    assert [(d.state, d.attempt_count) for d in log] == [(State.WEBHOOK_DELIVERY_STATE_DELIVERED, 1)] * 4


async def test_create_is_idempotent_and_checks_its_request(stack, api, hooks, receiver):
    conversation_id, _ = await conversation(api)
    request_id = str(uuid.uuid4())
    url = receiver.url("idempotent")
    first, again = await asyncio.gather(
        hooks.create(url, [conversation_id], MESSAGE_CREATED, request_id=request_id),
        hooks.create(url, [conversation_id], MESSAGE_CREATED, request_id=request_id),
    )
    assert first == again
    assert first.signing_secret.startswith("whsec_")
    assert list(first.webhook.filter.conversations.conversation_ids) == [conversation_id]
    assert list(first.webhook.filter.event_types) == MESSAGE_CREATED
    assert first.webhook.HasField("create_time")
    got = await hooks.stub.GetWebhook(rr.GetWebhookRequest(webhook_id=first.webhook.webhook_id), metadata=hooks.metadata)
    assert got.webhook == first.webhook  # and no secret field exists to leak it

    async def code_of(call) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call
        return error.value.code(), error.value.details()

    assert (await code_of(hooks.create(url + "?other", [conversation_id], request_id=request_id)))[0] == grpc.StatusCode.ALREADY_EXISTS
    for bad_url in ("", "ftp://example.com/x", "not a url", "https://", "http://example.com/#x"):
        code, details = await code_of(hooks.create(bad_url, [conversation_id]))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "url" in details, bad_url
    assert (await code_of(hooks.create(url, [])))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert (await code_of(hooks.create(url, [conversation_id, conversation_id])))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert (await code_of(hooks.create(url, ["nope"])))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert (await code_of(hooks.create(url, [conversation_id], request_id="not-a-uuid")))[0] == grpc.StatusCode.INVALID_ARGUMENT
    code, details = await code_of(hooks.create(url, [str(uuid.uuid4())]))
    assert code == grpc.StatusCode.NOT_FOUND and "conversation" in details
    code, details = await code_of(hooks.create_for_user(url, str(uuid.uuid4())))
    assert code == grpc.StatusCode.NOT_FOUND and "user" in details
    code, details = await code_of(hooks.create_for_user(url, "nope"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "filter.user_id" in details

    unknown = str(uuid.uuid4())
    assert (await code_of(hooks.stub.GetWebhook(rr.GetWebhookRequest(webhook_id=unknown), metadata=hooks.metadata)))[0] == grpc.StatusCode.NOT_FOUND
    assert (await code_of(hooks.deliveries(unknown)))[0] == grpc.StatusCode.NOT_FOUND
    assert (await code_of(hooks.delete(unknown)))[0] == grpc.StatusCode.NOT_FOUND
    # Another client's webhook is as unknown as one that does not exist, and so is its conversation.
    stranger = (("x-chat4all-client-id", "stranger"),)
    other = hooks.stub.GetWebhook(rr.GetWebhookRequest(webhook_id=first.webhook.webhook_id), metadata=stranger)
    assert (await code_of(other))[0] == grpc.StatusCode.NOT_FOUND
    code, details = await code_of(hooks.create(url, [conversation_id], MESSAGE_CREATED, metadata=stranger))
    assert code == grpc.StatusCode.NOT_FOUND and conversation_id in details
    # Request ids are per client: the same one from another client is a request of its own.
    strangers = api_of(stack, "stranger")
    try:
        their_conversation, _ = await conversation(strangers)
    finally:
        await strangers.close()
    theirs = await hooks.create(url, [their_conversation], MESSAGE_CREATED, request_id=request_id, metadata=stranger)
    assert theirs.webhook.webhook_id != first.webhook.webhook_id and theirs.signing_secret != first.signing_secret


async def test_list_webhooks_pages_through_the_callers_webhooks_newest_first(api, hooks, receiver):
    conversation_id, _ = await conversation(api)
    created = [(await hooks.create(receiver.url(f"list{n}"), [conversation_id])).webhook for n in range(3)]
    listed, token = [], ""
    while True:
        page = await hooks.stub.ListWebhooks(rr.ListWebhooksRequest(page_size=2, page_token=token), metadata=hooks.metadata)
        assert len(page.webhooks) <= 2
        listed += page.webhooks
        token = page.next_page_token
        if not token:
            break
    assert [w.webhook_id for w in listed] == [w.webhook_id for w in reversed(created)]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await hooks.stub.ListWebhooks(rr.ListWebhooksRequest(page_token="garbage"), metadata=hooks.metadata)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# User-scoped webhooks ---------------------------------------------------------------------------


async def events_cursor(api, conversation_id: str) -> str:
    """Where the conversation's own stream stands now, to compare a webhook's events with it."""
    request = messaging_requests.ListMessagesRequest(conversation_id=conversation_id, page_size=1)
    return (await api.messages.ListMessages(request)).events_cursor


async def add_member(api, conversation_id: str, user_id: str) -> None:
    await api.conversations.AddMember(conversation_requests.AddMemberRequest(
        request_id=str(uuid.uuid4()), conversation_id=conversation_id, member=conversation_pb2.Member(user_id=user_id)
    ))


async def test_a_user_webhook_gets_each_event_of_the_users_conversations_once_in_order(api, hooks, receiver):
    alice, bob, carol, dan = [await api.user(name) for name in ("Alice", "Bob", "Carol", "Dan")]
    direct, group = await api.conversation(alice, bob), await api.conversation(alice, bob, carol)
    elsewhere = await api.conversation(bob, carol)  # never Alice's
    club = await api.conversation(bob, carol, dan)  # Alice joins it after the webhook exists
    old = await send(api, direct, alice, "before the webhook")
    await wait_until_sent(api, old, 1)  # its SENT too: nothing of it happens after the creation
    starts = {c: await events_cursor(api, c) for c in (direct, group)}

    created = await hooks.create_for_user(receiver.url("alice"), alice)  # every event type
    assert created.webhook.filter.WhichOneof("scope") == "user_id" and created.webhook.filter.user_id == alice
    got = await hooks.stub.GetWebhook(rr.GetWebhookRequest(webhook_id=created.webhook.webhook_id), metadata=hooks.metadata)
    assert got.webhook == created.webhook
    # The same conversation through a conversation-scoped webhook: one event, one id.
    per_conversation = await hooks.create(receiver.url("direct-only"), [direct])

    for conversation_id, sender, text in [
        (direct, alice, "d1"), (group, carol, "g1"), (elsewhere, bob, "not for Alice"), (direct, bob, "d2"), (group, alice, "g2"),
    ]:
        await send(api, conversation_id, sender, text)
    said_before = await send(api, club, bob, "before Alice joined")
    await wait_until_sent(api, said_before, 2)  # settled before the join, statuses included
    await add_member(api, club, alice)
    starts[club] = await events_cursor(api, club)
    await send(api, club, carol, "welcome Alice")

    # Each message: message_created, then SENT for each internal recipient.
    expected = {direct: 2 * 2, group: 2 * 3, club: 1 + 3}
    total = sum(expected.values())
    await receiver.wait_for(lambda: len(receiver.accepted("alice")) >= total, what="the user's events")
    await receiver.wait_for(lambda: len(receiver.accepted("direct-only")) >= expected[direct], what="the direct webhook")
    await asyncio.sleep(1.0)  # anything extra would have arrived by now
    received = [event_of(r) for r in receiver.accepted("alice")]
    assert len(received) == total and len(receiver.to("alice")) == total
    assert len({e.event_id for e in received}) == total  # each event once
    assert {e.event.conversation_id for e in received} == set(expected)  # nothing from elsewhere
    assert {e.event.message_created.content.text for e in received if e.event.HasField("message_created")} == {
        "d1", "d2", "g1", "g2", "welcome Alice"
    }
    for conversation_id, count in expected.items():
        # Exactly the conversation's own stream from the creation (from the join, for the club), in its order.
        mine = [content(e.event) for e in received if e.event.conversation_id == conversation_id]
        own = await conversation_events(api, conversation_id, starts[conversation_id], count)
        assert len(mine) == count and mine == [content(e) for e in own], conversation_id

    ids_by_event = {content(e.event): e.event_id for e in received if e.event.conversation_id == direct}
    direct_only = [event_of(r) for r in receiver.accepted("direct-only")]
    assert {content(e.event): e.event_id for e in direct_only} == ids_by_event

    log = await wait_for_deliveries(hooks, created.webhook.webhook_id, lambda d: len(d) == total)
    assert all(d.state == State.WEBHOOK_DELIVERY_STATE_DELIVERED and d.attempt_count == 1 for d in log)
    assert {d.event_id: d.conversation_id for d in log} == {e.event_id: e.event.conversation_id for e in received}
    await hooks.delete(per_conversation.webhook.webhook_id)


async def test_a_user_webhook_loses_nothing_and_queues_nothing_twice_across_restarts(stack, webhooks_env, api, hooks, receiver):
    alice, bob, carol = await api.user("Alice"), await api.user("Bob"), await api.user("Carol")
    direct, group = await api.conversation(alice, bob), await api.conversation(alice, bob, carol)
    created = await hooks.create_for_user(receiver.url("user-restart"), alice, MESSAGE_CREATED)
    webhook_id = created.webhook.webhook_id

    async def stop(kill: bool = False) -> None:
        process = stack.services["webhooks"].process
        if kill:  # no graceful hand-over: the next process takes the stream once its lease lapses
            process.signal(signal.SIGKILL)
            await asyncio.to_thread(process.proc.wait, 10)
        await asyncio.to_thread(stack.stop, "webhooks")

    async def start() -> Hooks:
        service = await asyncio.to_thread(stack.start, "webhooks", "services.webhooks", webhooks_env)
        client = Hooks(service.target, hooks.client)
        return client

    async def accepted(count: int) -> None:
        await receiver.wait_for(lambda: len(receiver.accepted("user-restart")) >= count, what=f"{count} events")

    # Stopped before its first event: the start cursor stored at creation is all it has.
    await stop()
    await send(api, direct, bob, "m1")
    await asyncio.sleep(0.5)
    client = await start()
    await accepted(1)
    await send(api, group, carol, "m2")
    await accepted(2)
    # Killed only once both outcomes are recorded, so no attempt is in flight.
    await wait_for_deliveries(client, webhook_id, lambda d: len(d) == 2 and all(x.state == State.WEBHOOK_DELIVERY_STATE_DELIVERED for x in d))
    await client.channel.close()

    await stop(kill=True)
    for conversation_id, sender, text in ((direct, bob, "m3"), (group, carol, "m4"), (direct, alice, "m5")):
        await send(api, conversation_id, sender, text)  # while no process follows the stream
    client = await start()
    try:
        await accepted(5)
        await send(api, group, bob, "m6")
        await accepted(6)
        await asyncio.sleep(0.5)
        log = await client.deliveries(webhook_id)
    finally:
        await client.channel.close()

    received = [event_of(r) for r in receiver.to("user-restart")]
    assert sorted(e.event.message_created.content.text for e in received) == ["m1", "m2", "m3", "m4", "m5", "m6"]
    in_order = {c: [e.event.message_created.content.text for e in received if e.event.conversation_id == c] for c in (direct, group)}
    assert in_order == {direct: ["m1", "m3", "m5"], group: ["m2", "m4", "m6"]}
    assert [(d.state, d.attempt_count) for d in log] == [(State.WEBHOOK_DELIVERY_STATE_DELIVERED, 1)] * 6
