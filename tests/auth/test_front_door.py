"""Envoy's Check, asked over gRPC exactly as Envoy asks it: no key 401, a wrong or revoked key
401 (revocation within seconds on every replica), a key without the RPC's scope 403, internal
RPCs 403 to everyone, a client over its rate limit 429 with retry-after while other clients go
on; what an allowed request carries upstream; no secret in any log line."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time

import pytest
import redis.asyncio as redis
from chat4all.auth.v1 import message_pb2 as pb, request_response_pb2 as rr
from google.rpc import error_details_pb2
from google.rpc.status_pb2 import Status
from prometheus_client import REGISTRY

from services.auth.front_door import FrontDoor, Outcome
from services.auth.store import StoredKey
from services.runtime.errors import Unavailable
from services.runtime.rate_limits import RateLimiter
from tests.auth.harness import (
    INTERNAL,
    LIST_MESSAGES,
    SEND,
    denied_body,
    denied_headers,
    denied_message,
    http_status,
    redis_prefix,
    replica,
    upstream_headers,
)
from tests.services.servers import execute

APPLY_USER_MERGE = "/chat4all.conversations.v1.ConversationService/ApplyUserMerge"
CONNECTOR_SEND = "/chat4all.connector.v1.MessageConnector/SendMessage"


@pytest.fixture
async def prefix():
    async with redis_prefix() as value:
        yield value


@pytest.fixture
async def auth(postgres_dsn, prefix):
    async with replica(postgres_dsn, prefix) as service:
        yield service


async def poll(condition, timeout: float = 5.0, interval: float = 0.05) -> float:
    """Seconds until `condition()` (a coroutine function) is true; fails after `timeout`."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(interval)
    return time.monotonic() - started


async def test_no_credentials_is_401_with_a_bearer_challenge_for_rest_and_grpc_clients(auth):
    rest = await auth.check(SEND, rest=True)
    assert http_status(rest) == 401
    assert rest.status.code == 16  # UNAUTHENTICATED
    headers = denied_headers(rest)
    assert headers["www-authenticate"].startswith("Bearer")
    assert headers["content-type"] == "application/json" and headers["grpc-status"] == "16"
    body = denied_body(rest)
    assert body["code"] == 16 and body["details"] == [] and "API key" in body["message"]

    # A gRPC client: Envoy answers it with our grpc-status, and our body as grpc-message.
    grpc_native = await auth.check(SEND)
    assert http_status(grpc_native) == 401 and denied_headers(grpc_native)["grpc-status"] == "16"
    assert denied_message(grpc_native) == body["message"]


async def test_malformed_unknown_and_wrong_keys_all_get_the_same_401(auth):
    secret = (await auth.create_key("billing", pb.SCOPE_SEND)).secret
    key_part, random_part = secret.split(".")
    wrong_random = ("A" if random_part[0] != "A" else "B") + random_part[1:]
    answers = [
        await auth.check_with_key(SEND, f"{key_part}.{wrong_random}"),  # right key, wrong secret
        await auth.check_with_key(SEND, f"c4a_0123456789abcdef.{random_part}"),  # no such key
        await auth.check_with_key(SEND, "not-a-key"),
        await auth.check_with_key(SEND, ""),
        await auth.check(SEND, {"authorization": f"Basic {secret}"}),
        await auth.check(SEND, {"x-api-key": f"{secret}x"}),
    ]
    assert [http_status(a) for a in answers] == [401] * len(answers)
    assert {denied_message(a) for a in answers} == {"the API key is not valid"}


async def test_a_send_only_key_sends_but_cannot_read_history(auth):
    response = await auth.create_key("billing", pb.SCOPE_SEND)
    secret, key_id = response.secret, response.api_key.key_id

    for rest in (True, False):
        denied = await auth.check_with_key(LIST_MESSAGES, secret, rest=rest)
        assert http_status(denied) == 403 and denied.status.code == 7  # PERMISSION_DENIED
        assert denied_headers(denied)["grpc-status"] == "7"
        assert "read scope" in (denied_body(denied)["message"] if rest else denied_message(denied))

    # A client naming itself someone else is overwritten; the secret goes no further.
    allowed = await auth.check(
        SEND, {"authorization": f"Bearer {secret}", "x-chat4all-client-id": "someone-else", "x-chat4all-scopes": "admin"}
    )
    assert http_status(allowed) == 200
    assert upstream_headers(allowed) == {
        "x-chat4all-client-id": "billing",
        "x-chat4all-scopes": "send",
        "x-chat4all-key-id": key_id,
    }
    assert {h.append_action.name for h in allowed.ok_response.headers} == {"OVERWRITE_IF_EXISTS_OR_ADD"}
    assert set(allowed.ok_response.headers_to_remove) == {"authorization", "x-api-key"}
    # The same key in x-api-key; a REST call after the transcoder looks the same; and a query
    # string does not change the method.
    assert http_status(await auth.check(SEND, {"x-api-key": secret})) == 200
    assert http_status(await auth.check(SEND, {"authorization": f"bearer  {secret} "}, rest=True)) == 200
    assert http_status(await auth.check_with_key(SEND + "?alt=json", secret)) == 200


async def test_internal_and_unknown_rpcs_are_refused_to_every_key_health_needs_only_a_key(auth):
    secret = (await auth.create_key("ops", pb.SCOPE_ADMIN, pb.SCOPE_READ, pb.SCOPE_SEND)).secret
    for path in (APPLY_USER_MERGE, CONNECTOR_SEND, "/chat4all.messaging.v1.MessageService/Nope", "/v1/messages"):
        response = await auth.check_with_key(path, secret)
        assert http_status(response) == 403, path
    reader = (await auth.create_key("billing", pb.SCOPE_READ)).secret
    assert http_status(await auth.check_with_key("/grpc.health.v1.Health/Check", reader)) == 200
    assert http_status(await auth.check_with_key("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", reader)) == 200
    assert http_status(await auth.check("/grpc.health.v1.Health/Check")) == 401


async def test_a_revoked_key_is_refused_by_every_replica_within_seconds(auth, postgres_dsn, prefix):
    async with replica(postgres_dsn, prefix) as other:
        response = await auth.create_key("billing", pb.SCOPE_SEND)
        secret = response.secret
        # Both replicas have verified (and cached) the key.
        assert http_status(await auth.check_with_key(SEND, secret)) == 200
        assert http_status(await other.check_with_key(SEND, secret)) == 200

        await auth.keys.RevokeApiKey(rr.RevokeApiKeyRequest(key_id=response.api_key.key_id), metadata=INTERNAL)

        async def refused(replica_) -> bool:
            return http_status(await replica_.check_with_key(SEND, secret)) == 401

        assert await refused(auth)  # the replica that revoked it: at once
        # The other one hears it on Redis; well inside the 2 s its cache may keep a key.
        assert await poll(lambda: refused(other), timeout=2.0) < 2.0


async def test_a_key_revoked_behind_the_service_s_back_stops_working_when_the_cache_lapses(auth, postgres_dsn):
    response = await auth.create_key("billing", pb.SCOPE_SEND)
    assert http_status(await auth.check_with_key(SEND, response.secret)) == 200
    # No announcement: only the cache's age bound (C4A_AUTH_CACHE_SECONDS, 2 s) applies.
    await execute(postgres_dsn, "UPDATE api_keys SET revoke_time = now() WHERE key_id = %s", (response.api_key.key_id,))

    async def refused() -> bool:
        return http_status(await auth.check_with_key(SEND, response.secret)) == 401

    assert await poll(refused, timeout=5.0) < 5.0


async def test_a_client_over_its_rate_limit_gets_429_with_retry_after_and_others_go_on(auth):
    slow = await auth.create_key("slow-client", pb.SCOPE_SEND, requests_per_second=1)
    # A second key of the same client shares the client's budget.
    slow_other_key = await auth.create_key("slow-client", pb.SCOPE_SEND, requests_per_second=1)
    busy = await auth.create_key("busy-client", pb.SCOPE_SEND)

    # 1 request/s with a burst of 2: the third request in a row is over the limit.
    statuses = [http_status(await auth.check_with_key(SEND, slow.secret)) for _ in range(2)]
    throttled = await auth.check_with_key(SEND, slow_other_key.secret, rest=True)
    assert statuses == [200, 200] and http_status(throttled) == 429
    assert throttled.status.code == 8  # RESOURCE_EXHAUSTED
    headers = denied_headers(throttled)
    assert int(headers["retry-after"]) >= 1 and headers["grpc-status"] == "8"
    body = denied_body(throttled)
    assert body["code"] == 8
    assert body["details"] == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": headers["retry-after"] + "s"}]
    # A gRPC client gets RESOURCE_EXHAUSTED (not the UNAVAILABLE Envoy derives from 429) and a RetryInfo.
    grpc_throttled = await auth.check_with_key(SEND, slow.secret)
    details = Status.FromString(base64.b64decode(denied_headers(grpc_throttled)["grpc-status-details-bin"]))
    retry = error_details_pb2.RetryInfo()
    assert details.code == 8 and details.details[0].Unpack(retry) and retry.retry_delay.seconds >= 1

    for _ in range(20):
        assert http_status(await auth.check_with_key(SEND, busy.secret)) == 200


async def test_no_secret_reaches_a_log_line(auth, caplog):
    caplog.set_level(logging.DEBUG)
    response = await auth.create_key("billing", pb.SCOPE_SEND)
    secret = response.secret
    for path in (SEND, LIST_MESSAGES, APPLY_USER_MERGE):
        await auth.check_with_key(path, secret)
    await auth.check_with_key(SEND, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    await auth.keys.RevokeApiKey(rr.RevokeApiKeyRequest(key_id=response.api_key.key_id), metadata=INTERNAL)
    await auth.check_with_key(SEND, secret)
    assert caplog.records  # the checks were logged at all
    random_part = secret.split(".")[1]
    assert all(random_part[:20] not in record.getMessage() and random_part[:20] not in str(vars(record))
               for record in caplog.records)


async def test_decisions_are_counted_by_outcome(auth):
    def count(outcome: str) -> float:
        return REGISTRY.get_sample_value("chat4all_auth_decisions_total", {"outcome": outcome}) or 0.0

    before = {o.value: count(o.value) for o in Outcome}
    secret = (await auth.create_key("billing", pb.SCOPE_SEND)).secret
    await auth.check_with_key(SEND, secret)
    await auth.check_with_key(LIST_MESSAGES, secret)
    await auth.check(SEND)
    assert count("allowed") == before["allowed"] + 1
    assert count("forbidden") == before["forbidden"] + 1
    assert count("unauthenticated") == before["unauthenticated"] + 1


# Failure modes, on the decision itself --------------------------------------------------------


KEY = StoredKey("0123456789abcdef", "billing", frozenset({pb.SCOPE_SEND}), 0, b"", False)


async def test_an_unreachable_key_store_refuses_the_request_503():
    async def store_down(key_id: str):
        raise Unavailable("the key store cannot be reached")

    front_door = FrontDoor(store_down, None, {SEND: pb.SCOPE_SEND}, 100)  # type: ignore[arg-type]
    decision = await front_door.decide(SEND, "c4a_0123456789abcdef." + "A" * 43)
    assert decision.outcome is Outcome.UNAVAILABLE


async def test_an_unreachable_rate_limiter_lets_valid_keys_through():
    secret = "c4a_0123456789abcdef." + "A" * 43
    key = StoredKey(KEY.key_id, KEY.client_id, KEY.scopes, 0, hashlib.sha256(secret.encode()).digest(), False)

    async def lookup(key_id: str):
        return key

    nowhere = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        front_door = FrontDoor(lookup, RateLimiter(nowhere, "x"), {SEND: pb.SCOPE_SEND}, 100, limiter_timeout_seconds=0.5)
        assert (await front_door.decide(SEND, secret)).outcome is Outcome.ALLOWED
        assert (await front_door.decide(LIST_MESSAGES, secret)).outcome is Outcome.FORBIDDEN
    finally:
        await nowhere.aclose()
