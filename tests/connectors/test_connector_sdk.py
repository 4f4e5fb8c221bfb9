"""The connector SDK's building blocks on the machine's Redis: shared rate limits,
the platform's own throttle held for every replica, the reply window, the send
ledger's record and status index, and the circuit breaker's states."""

from __future__ import annotations

import time
import uuid

import pytest
from chat4all.channel.v1 import channel_pb2
from chat4all.messaging.v1 import message_pb2 as messaging_pb2

from connectors.sdk.breaker import CircuitBreaker, CircuitState
from connectors.sdk.rate_limits import Bucket, Limit, RateLimiter
from connectors.sdk.reply_window import ReplyWindow
from connectors.sdk.send_ledger import DeliveryRef, SendLedger, SentRecord
from services.runtime.errors import InvalidArgument, ResourceExhausted, Unavailable
from tests.connectors.harness import redis_namespace


@pytest.fixture
async def client():
    """A Redis client and a key prefix of this test; every key under it is deleted afterwards."""
    async with redis_namespace("sdk") as (connection, prefix):
        yield connection, prefix


async def test_replicas_share_one_limit_and_learn_the_exact_wait(client):
    connection, prefix = client
    replicas = [RateLimiter(connection, f"{prefix}:{{acct}}:rate") for _ in range(2)]
    account = Bucket("account", Limit("account", per_second=10, burst=4))
    admitted = [await replicas[i % 2].admit([account]) for i in range(4)]
    # A burst of 4 at once, taken from both replicas; the fifth is refused on either of them.
    assert admitted == [None] * 4
    refusal = await replicas[1].admit([account])
    assert refusal is not None and refusal.scope == "account"
    assert 0 < refusal.retry_after_seconds <= 0.1
    time.sleep(refusal.retry_after_seconds + 0.01)
    assert await replicas[0].admit([account]) is None


async def test_a_full_recipient_bucket_counts_nothing_against_the_account(client):
    connection, prefix = client
    limiter = RateLimiter(connection, f"{prefix}:{{acct}}:rate")
    account = Bucket("account", Limit("account", per_second=0.001, burst=3))
    one_user = Bucket("recipient:1", Limit("recipient", per_second=1 / 6, burst=2))
    results = [await limiter.admit([account, one_user]) for _ in range(4)]
    assert results[:2] == [None, None]
    assert all(r is not None and r.scope == "recipient" and r.retry_after_seconds > 5 for r in results[2:])
    # The refused sends took nothing from the account: its third slot is still there for
    # another user, and only then is the account full.
    assert await limiter.admit([account, Bucket("recipient:2", one_user.limit)]) is None
    assert (await limiter.admit([account, Bucket("recipient:3", one_user.limit)])).scope == "account"


async def test_a_platform_throttle_holds_the_bucket_for_every_replica(client):
    connection, prefix = client
    account = Bucket("account", Limit("account", per_second=1000, burst=100))
    told, other = RateLimiter(connection, f"{prefix}:{{a}}:rate"), RateLimiter(connection, f"{prefix}:{{a}}:rate")
    assert await told.admit([account]) is None
    await told.hold(account, 2.0)
    refusal = await other.admit([account])
    assert refusal is not None and 1.9 <= refusal.retry_after_seconds <= 2.01
    await told.hold(account, 0.5)  # a shorter hold never shortens a longer one
    assert (await other.admit([account])).retry_after_seconds > 1.5


async def test_the_reply_window_moves_only_forward_and_closes(client):
    connection, prefix = client
    window = ReplyWindow(connection, f"{prefix}:window", window_seconds=24 * 3600)
    assert await window.closes_at("555") is None
    now = time.time()
    await window.opened("555", now - 3600)
    assert await window.closes_at("555") == pytest.approx(int(now - 3600) + 24 * 3600)
    await window.opened("555", now - 7200)  # a late webhook for an older message
    assert await window.closes_at("555") == pytest.approx(int(now - 3600) + 24 * 3600)
    await window.opened("777", now - 25 * 3600)  # wrote more than a day ago: still closed
    assert await window.closes_at("777") is None


async def test_the_ledger_answers_repeats_and_finds_the_delivery_of_a_platform_id(client):
    connection, prefix = client
    ledger = SendLedger(connection, f"{prefix}:{{acct}}", ttl_seconds=60, lock_seconds=5)
    claim = await ledger.find_or_claim("555", "m1")
    assert claim.lock and claim.sent is None
    assert (await ledger.find_or_claim("555", "m1")) == type(claim)()  # busy: neither record nor lock
    recipient = messaging_pb2.Recipient(user_id="u1", channel=channel_pb2.CHANNEL_WHATSAPP, external_id="555")
    await ledger.record("555", "m1", claim.lock, SentRecord(["wamid.A", "wamid.B"], 1700000000), DeliveryRef("m1", "c1", recipient))
    again = await ledger.find_or_claim("555", "m1")
    assert again.sent == SentRecord(["wamid.A", "wamid.B"], 1700000000)
    for platform_id in ("wamid.A", "wamid.B"):
        assert await ledger.delivery_of(platform_id) == DeliveryRef("m1", "c1", recipient)
    assert await ledger.delivery_of("wamid.unknown") is None


async def test_the_ledger_keeps_the_parts_of_a_send_that_failed_half_way(client):
    connection, prefix = client
    ledger = SendLedger(connection, f"{prefix}:{{acct}}", ttl_seconds=60, lock_seconds=5)
    claim = await ledger.find_or_claim("555", "m2")
    await ledger.note_parts("555", "m2", claim.lock, SentRecord(["part-1"], 1700000000))
    await ledger.release("555", "m2", claim.lock)
    assert (await ledger.parts_sent("555", "m2")) == SentRecord(["part-1"], 1700000000)
    # Without the lock, nobody overwrites another sender's progress.
    await ledger.note_parts("555", "m2", "not-my-lock", SentRecord(["x", "y"], 1))
    assert (await ledger.parts_sent("555", "m2")).platform_message_ids == ["part-1"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_fails_fast_probes_once_and_closes():
    clock = Clock()
    breaker = CircuitBreaker("test", f"acct-{uuid.uuid4().hex[:6]}", failure_threshold=3, open_seconds=2, max_open_seconds=8, clock=clock)
    down = Unavailable("connection refused")
    breaker.admit()
    assert breaker.failed(down) is down and breaker.failed(down) is down
    # The failure that opens it already carries the wait: the caller defers, not gives up.
    opening = breaker.failed(down)
    assert breaker.state is CircuitState.OPEN and opening.retry_after_seconds == pytest.approx(2)
    with pytest.raises(Unavailable) as fast:
        breaker.admit()
    assert fast.value.retry_after_seconds == pytest.approx(2)
    clock.now += 2
    breaker.admit()  # the probe
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(Unavailable):
        breaker.admit()  # only one probe at a time
    failed_probe = breaker.failed(down)
    assert breaker.state is CircuitState.OPEN and failed_probe.retry_after_seconds == pytest.approx(4)  # doubled
    clock.now += 4
    breaker.admit()
    breaker.succeeded()
    assert breaker.state is CircuitState.CLOSED and breaker.failures == 0
    breaker.admit()


def test_refusals_and_throttles_prove_the_platform_is_up():
    breaker = CircuitBreaker("test", f"acct-{uuid.uuid4().hex[:6]}", failure_threshold=2, clock=Clock())
    down = Unavailable("HTTP 503")
    breaker.failed(down)
    assert breaker.failed(InvalidArgument("bad recipient")).code.name == "INVALID_ARGUMENT"
    assert breaker.failed(ResourceExhausted("slow down", retry_after_seconds=1)).retry_after_seconds == 1
    breaker.failed(down)
    assert breaker.state is CircuitState.CLOSED  # the count restarted after the platform answered
