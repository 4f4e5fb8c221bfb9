"""ApiKeyService on its own database: keys made, listed, revoked; a retried CreateApiKey answers
with the same key and secret; only admins may call it; secrets are never stored in clear; the
command line makes the first admin key."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
import pytest
from chat4all.auth.v1 import message_pb2 as pb, request_response_pb2 as rr

from tests.auth.harness import ADMIN, INTERNAL, SEND, admin_of, http_status, redis_prefix, replica, rpc_error
from tests.services.servers import query

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def auth(postgres_dsn):
    async with redis_prefix() as prefix, replica(postgres_dsn, prefix) as service:
        yield service


async def test_created_keys_are_listed_newest_first_page_by_page_and_per_client(auth):
    created = [
        await auth.create_key("billing", pb.SCOPE_SEND),
        await auth.create_key("billing", pb.SCOPE_READ, pb.SCOPE_SEND, requests_per_second=5),
        await auth.create_key("support", pb.SCOPE_ADMIN),
    ]
    for response in created:
        key = response.api_key
        assert len(key.key_id) == 16 and response.secret.startswith(f"c4a_{key.key_id}.")
        assert len(response.secret) == len("c4a_") + 16 + 1 + 43
        assert key.HasField("create_time") and not key.HasField("revoke_time")
    assert list(created[1].api_key.scopes) == [pb.SCOPE_SEND, pb.SCOPE_READ]
    assert created[1].api_key.requests_per_second == 5

    first = await auth.keys.ListApiKeys(rr.ListApiKeysRequest(page_size=2), metadata=INTERNAL)
    second = await auth.keys.ListApiKeys(rr.ListApiKeysRequest(page_size=2, page_token=first.next_page_token), metadata=INTERNAL)
    assert [k.key_id for k in [*first.api_keys, *second.api_keys]] == [r.api_key.key_id for r in reversed(created)]
    assert first.next_page_token and not second.next_page_token

    billing = await auth.keys.ListApiKeys(rr.ListApiKeysRequest(client_id="billing"), metadata=INTERNAL)
    assert [k.key_id for k in billing.api_keys] == [created[1].api_key.key_id, created[0].api_key.key_id]
    # A page token belongs to the listing it came from.
    error = await rpc_error(
        auth.keys.ListApiKeys(rr.ListApiKeysRequest(client_id="support", page_token=first.next_page_token), metadata=INTERNAL)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_revoking_sets_the_revoke_time_once_and_an_unknown_key_is_not_found(auth):
    billing_admin = admin_of("billing")
    key = (await auth.create_key("billing", pb.SCOPE_SEND)).api_key
    revoked = (await auth.keys.RevokeApiKey(rr.RevokeApiKeyRequest(key_id=key.key_id), metadata=billing_admin)).api_key
    assert revoked.HasField("revoke_time")
    again = (await auth.keys.RevokeApiKey(rr.RevokeApiKeyRequest(key_id=key.key_id), metadata=billing_admin)).api_key
    assert again.revoke_time == revoked.revoke_time
    listed = (await auth.keys.ListApiKeys(rr.ListApiKeysRequest(), metadata=billing_admin)).api_keys
    assert listed[0].revoke_time == revoked.revoke_time

    error = await rpc_error(auth.keys.RevokeApiKey(rr.RevokeApiKeyRequest(key_id="0123456789abcdef"), metadata=billing_admin))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await rpc_error(auth.keys.RevokeApiKey(rr.RevokeApiKeyRequest(key_id="nope"), metadata=billing_admin))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_retried_create_returns_the_same_key_and_secret_and_a_reused_request_id_is_refused(auth, postgres_dsn):
    request = rr.CreateApiKeyRequest(
        request_id=str(uuid.uuid4()), api_key=pb.ApiKey(client_id="billing", scopes=[pb.SCOPE_SEND])
    )
    first = await auth.keys.CreateApiKey(request, metadata=admin_of("billing"))
    retry = await auth.keys.CreateApiKey(request, metadata=admin_of("billing"))
    assert retry.api_key == first.api_key and retry.secret == first.secret
    assert await query(postgres_dsn, "SELECT count(*) FROM api_keys") == [(1,)]

    other = rr.CreateApiKeyRequest(request_id=request.request_id, api_key=pb.ApiKey(client_id="billing", scopes=[pb.SCOPE_READ]))
    error = await rpc_error(auth.keys.CreateApiKey(other, metadata=admin_of("billing")))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    # request_ids are the caller's own: another client's equal one is another request.
    assert (await auth.keys.CreateApiKey(other, metadata=INTERNAL)).api_key.key_id != first.api_key.key_id


async def test_secrets_are_stored_only_hashed(auth, postgres_dsn):
    response = await auth.create_key("billing", pb.SCOPE_SEND)
    secret, key_id = response.secret, response.api_key.key_id
    random_part = secret.split(".", 1)[1]
    for table in ("api_keys", "api_key_requests"):
        for row in await query(postgres_dsn, f"SELECT * FROM {table}"):
            for value in row:
                text = value.hex() if isinstance(value, bytes) else str(value)
                raw = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
                assert random_part not in text and random_part.encode() not in raw, table
    [(stored,)] = await query(postgres_dsn, "SELECT secret_hash FROM api_keys WHERE key_id = %s", (key_id,))
    assert bytes(stored) == hashlib.sha256(secret.encode()).digest()


async def test_only_admin_keys_manage_keys_while_internal_calls_pass(auth):
    send_read = (("x-chat4all-client-id", "billing"), ("x-chat4all-scopes", "send,read"))
    for call in (
        auth.create_key("billing", pb.SCOPE_SEND, metadata=send_read),
        auth.keys.ListApiKeys(rr.ListApiKeysRequest(), metadata=send_read),
        auth.keys.RevokeApiKey(rr.RevokeApiKeyRequest(key_id="0123456789abcdef"), metadata=send_read),
        auth.keys.ListApiKeys(rr.ListApiKeysRequest(), metadata=(("x-chat4all-client-id", "billing"),)),
    ):
        assert (await rpc_error(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    # No client named: a call from inside the mesh, which only the mesh can make.
    assert (await auth.create_key("billing", pb.SCOPE_SEND, metadata=INTERNAL)).secret


async def test_an_admin_key_manages_only_its_own_client_s_keys(auth):
    billing_admin = admin_of("billing")
    own = (await auth.create_key("billing", pb.SCOPE_SEND, metadata=billing_admin)).api_key
    others = (await auth.create_key("support", pb.SCOPE_SEND)).api_key

    error = await rpc_error(auth.create_key("support", pb.SCOPE_ADMIN, metadata=billing_admin))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = await auth.keys.ListApiKeys(rr.ListApiKeysRequest(), metadata=billing_admin)
    assert [k.key_id for k in listed.api_keys] == [own.key_id]
    error = await rpc_error(auth.keys.ListApiKeys(rr.ListApiKeysRequest(client_id="support"), metadata=billing_admin))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    # Another client's key is as unknown as a key that does not exist, and stays unrevoked.
    error = await rpc_error(auth.keys.RevokeApiKey(rr.RevokeApiKeyRequest(key_id=others.key_id), metadata=billing_admin))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    [support] = (await auth.keys.ListApiKeys(rr.ListApiKeysRequest(client_id="support"), metadata=INTERNAL)).api_keys
    assert not support.HasField("revoke_time")


@pytest.mark.parametrize(
    ("api_key", "words"),
    [
        (pb.ApiKey(scopes=[pb.SCOPE_SEND]), "client_id is required"),
        (pb.ApiKey(client_id="has space", scopes=[pb.SCOPE_SEND]), "client_id"),
        (pb.ApiKey(client_id="anonymous", scopes=[pb.SCOPE_SEND]), "client_id"),
        (pb.ApiKey(client_id="billing"), "scopes"),
        (pb.ApiKey(client_id="billing", scopes=[pb.SCOPE_UNSPECIFIED]), "scopes[0]"),
        (pb.ApiKey(client_id="billing", scopes=[pb.SCOPE_SEND, 42]), "scopes[1]"),
        (pb.ApiKey(client_id="billing", scopes=[pb.SCOPE_SEND], requests_per_second=-1), "requests_per_second"),
    ],
)
async def test_create_refuses_malformed_keys_naming_the_field(auth, postgres_dsn, api_key, words):
    error = await rpc_error(
        auth.keys.CreateApiKey(rr.CreateApiKeyRequest(request_id=str(uuid.uuid4()), api_key=api_key), metadata=INTERNAL)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and words in error.details()
    assert await query(postgres_dsn, "SELECT count(*) FROM api_keys") == [(0,)]


async def test_the_command_line_makes_the_first_admin_key_and_prints_its_secret_once(auth, postgres_dsn):
    result = subprocess.run(
        [sys.executable, "-m", "services.auth", "create-key", "--client-id", "ops", "--scopes", "admin,read", "--name", "first"],
        cwd=REPO,
        env={**os.environ, "C4A_POSTGRES_DSN": postgres_dsn},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    secret = result.stdout.strip()
    assert secret.startswith("c4a_") and secret not in result.stderr
    [key] = (await auth.keys.ListApiKeys(rr.ListApiKeysRequest(), metadata=ADMIN)).api_keys
    assert (key.client_id, key.display_name, list(key.scopes)) == ("ops", "first", [pb.SCOPE_READ, pb.SCOPE_ADMIN])
    assert key.key_id in result.stderr
    # The front door takes it.
    assert http_status(await auth.check_with_key("/chat4all.auth.v1.ApiKeyService/ListApiKeys", secret)) == 200
    assert http_status(await auth.check_with_key(SEND, secret)) == 403
