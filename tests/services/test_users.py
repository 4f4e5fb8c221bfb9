"""UserService against a real server and PostgreSQL: users, identities, resolution,
idempotent requests and the rule that an identity belongs to one user."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from chat4all.channel.v1 import channel_pb2
from chat4all.users.v1 import message_pb2, request_response_pb2 as rr, service_pb2_grpc

from tests.services.servers import execute, query, users_service

WHATSAPP, TELEGRAM, INSTAGRAM = channel_pb2.CHANNEL_WHATSAPP, channel_pb2.CHANNEL_TELEGRAM, channel_pb2.CHANNEL_INSTAGRAM


@pytest.fixture
async def users(postgres_dsn):
    async with users_service(postgres_dsn) as (runtime, channel):
        yield service_pb2_grpc.UserServiceStub(channel)


def rid() -> str:
    return str(uuid.uuid4())


def identity(channel: int, external_id: str, name: str = "") -> message_pb2.ExternalIdentity:
    return message_pb2.ExternalIdentity(channel=channel, external_id=external_id, display_name=name)


async def create(users, name: str = "Ana", *identities, preferred: int = 0, request_id: str | None = None):
    request = rr.CreateUserRequest(
        request_id=rid() if request_id is None else request_id, display_name=name, identities=identities, preferred_channel=preferred
    )
    return (await users.CreateUser(request, timeout=10)).user


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


def keys(user: message_pb2.User) -> list[tuple[int, str]]:
    return [(i.channel, i.external_id) for i in user.identities]


# CreateUser / GetUser ----------------------------------------------------------------------


async def test_create_user_with_identities_reads_back_through_the_api_and_the_tables(users, postgres_dsn):
    created = await create(
        users, "Ana Souza", identity(WHATSAPP, "5511999990001", "Ana"), identity(TELEGRAM, "42"), preferred=TELEGRAM
    )
    assert uuid.UUID(created.user_id).version == 4
    assert created.display_name == "Ana Souza"
    assert created.preferred_channel == TELEGRAM
    assert sorted(keys(created)) == sorted([(WHATSAPP, "5511999990001"), (TELEGRAM, "42")])
    assert {i.external_id: i.display_name for i in created.identities} == {"5511999990001": "Ana", "42": ""}
    assert all(i.link_time.seconds > 0 for i in created.identities)
    assert created.create_time.seconds > 0 and not created.merged_into_user_id

    read = (await users.GetUser(rr.GetUserRequest(user_id=created.user_id))).user
    assert read == created
    assert await query(postgres_dsn, "SELECT display_name, preferred_channel FROM users") == [("Ana Souza", TELEGRAM)]
    assert sorted(await query(postgres_dsn, "SELECT channel, external_id, user_id::text FROM user_identities")) == sorted(
        [(WHATSAPP, "5511999990001", created.user_id), (TELEGRAM, "42", created.user_id)]
    )


async def test_create_user_without_identities(users):
    created = await create(users, "Bia")
    assert not created.identities and created.preferred_channel == channel_pb2.CHANNEL_UNSPECIFIED


async def test_get_unknown_user_is_not_found_and_malformed_id_invalid(users):
    missing = str(uuid.uuid4())
    error = await rpc_error(users.GetUser(rr.GetUserRequest(user_id=missing)))
    assert error.code() == grpc.StatusCode.NOT_FOUND and missing in error.details()
    error = await rpc_error(users.GetUser(rr.GetUserRequest(user_id="not-a-uuid")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "user_id" in error.details()
    error = await rpc_error(users.GetUser(rr.GetUserRequest()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "user_id" in error.details()


async def test_create_user_retry_returns_the_first_user_and_reuse_for_another_request_is_rejected(users, postgres_dsn):
    request_id = rid()
    first = await create(users, "Ana", identity(WHATSAPP, "1"), request_id=request_id)
    # link_time is ignored on input, so a retry that sets it is still the same request.
    with_link_time = identity(WHATSAPP, "1")
    with_link_time.link_time.seconds = 12345
    again = await create(users, "Ana", with_link_time, request_id=request_id)
    assert again.user_id == first.user_id
    assert await query(postgres_dsn, "SELECT count(*) FROM users") == [(1,)]

    error = await rpc_error(create(users, "Another name", identity(WHATSAPP, "1"), request_id=request_id))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert request_id in error.details() and "different request" in error.details()
    assert await query(postgres_dsn, "SELECT count(*) FROM users") == [(1,)]


async def test_ten_concurrent_identical_creates_make_one_user(users, postgres_dsn):
    request_id = rid()
    created = await asyncio.gather(*(create(users, "Ana", identity(WHATSAPP, "7"), request_id=request_id) for _ in range(10)))
    assert len({u.user_id for u in created}) == 1
    assert await query(postgres_dsn, "SELECT count(*) FROM users") == [(1,)]
    assert await query(postgres_dsn, "SELECT count(*) FROM user_requests") == [(1,)]


async def test_ten_concurrent_first_contacts_from_one_sender_make_one_user(users, postgres_dsn):
    """The inbound path: ResolveIdentity said NOT_FOUND to ten messages at once, and each creates
    the user with the sender's identity under its own request_id. One wins; the others learn who."""
    results = await asyncio.gather(
        *(create(users, "Sender", identity(INSTAGRAM, "igsid-1")) for _ in range(10)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, message_pb2.User)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1 and len(losers) == 9
    for error in losers:
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS
        assert winners[0].user_id in error.details() and "igsid-1" in error.details()
    assert await query(postgres_dsn, "SELECT user_id::text FROM users") == [(winners[0].user_id,)]
    resolved = (await users.ResolveIdentity(rr.ResolveIdentityRequest(channel=INSTAGRAM, external_id="igsid-1"))).user
    assert resolved.user_id == winners[0].user_id


async def test_create_user_with_an_identity_of_another_user_creates_nothing(users, postgres_dsn):
    owner = await create(users, "Ana", identity(WHATSAPP, "1"))
    error = await rpc_error(create(users, "Bia", identity(TELEGRAM, "9"), identity(WHATSAPP, "1")))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert owner.user_id in error.details() and "CHANNEL_WHATSAPP/1" in error.details()
    assert await query(postgres_dsn, "SELECT count(*) FROM users") == [(1,)]
    assert await query(postgres_dsn, "SELECT channel, external_id FROM user_identities") == [(WHATSAPP, "1")]


@pytest.mark.parametrize(
    "request_fields, field",
    [
        (dict(request_id="", display_name="Ana"), "request_id"),
        (dict(request_id="nope", display_name="Ana"), "request_id"),
        (dict(request_id=str(uuid.uuid1()), display_name="Ana"), "request_id"),  # a UUID, not v4
        (dict(display_name=""), "display_name"),
        (dict(display_name="  "), "display_name"),
        (dict(display_name="Ana", preferred_channel=99), "preferred_channel"),
        (dict(display_name="Ana", identities=[identity(0, "1")]), "identities[0].channel"),
        (dict(display_name="Ana", identities=[identity(channel_pb2.CHANNEL_INTERNAL, "1")]), "identities[0].channel"),
        (dict(display_name="Ana", identities=[identity(WHATSAPP, "1"), identity(42, "1")]), "identities[1].channel"),
        (dict(display_name="Ana", identities=[identity(WHATSAPP, "")]), "identities[0].external_id"),
        (dict(display_name="Ana", identities=[identity(WHATSAPP, "1"), identity(WHATSAPP, "1")]), "identities[1]"),
    ],
)
async def test_create_user_rejects_malformed_requests_naming_the_field(users, postgres_dsn, request_fields, field):
    fields = {"request_id": rid(), **request_fields}
    error = await rpc_error(users.CreateUser(rr.CreateUserRequest(**fields)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.details()
    assert await query(postgres_dsn, "SELECT count(*) FROM users") == [(0,)]


# LinkIdentity / UnlinkIdentity ----------------------------------------------------------


async def link(users, user_id: str, ident: message_pb2.ExternalIdentity, request_id: str | None = None):
    request = rr.LinkIdentityRequest(request_id=rid() if request_id is None else request_id, user_id=user_id, identity=ident)
    return (await users.LinkIdentity(request)).user


async def unlink(users, user_id: str, channel: int, external_id: str, request_id: str | None = None):
    request = rr.UnlinkIdentityRequest(
        request_id=rid() if request_id is None else request_id, user_id=user_id, channel=channel, external_id=external_id
    )
    return (await users.UnlinkIdentity(request)).user


async def test_link_identity_adds_it_and_relinking_to_the_same_user_is_a_no_op(users, postgres_dsn):
    ana = await create(users, "Ana", identity(WHATSAPP, "1"))
    linked = await link(users, ana.user_id, identity(TELEGRAM, "55", "ana_tg"))
    assert keys(linked) == [(WHATSAPP, "1"), (TELEGRAM, "55")]
    assert linked.identities[1].display_name == "ana_tg"
    again = await link(users, ana.user_id, identity(TELEGRAM, "55", "renamed"))
    assert again == linked
    assert await query(postgres_dsn, "SELECT count(*) FROM user_identities WHERE channel = %s", (TELEGRAM,)) == [(1,)]


async def test_link_identity_of_another_user_names_the_owner(users):
    ana = await create(users, "Ana", identity(WHATSAPP, "1"))
    bia = await create(users, "Bia")
    error = await rpc_error(link(users, bia.user_id, identity(WHATSAPP, "1")))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert ana.user_id in error.details() and "CHANNEL_WHATSAPP/1" in error.details()
    assert not (await users.GetUser(rr.GetUserRequest(user_id=bia.user_id))).user.identities


async def test_link_identity_retry_and_request_id_reuse(users, postgres_dsn):
    ana = await create(users, "Ana")
    request_id = rid()
    first = await link(users, ana.user_id, identity(TELEGRAM, "55"), request_id=request_id)
    assert await link(users, ana.user_id, identity(TELEGRAM, "55"), request_id=request_id) == first
    error = await rpc_error(link(users, ana.user_id, identity(TELEGRAM, "56"), request_id=request_id))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and request_id in error.details()
    assert await query(postgres_dsn, "SELECT external_id FROM user_identities") == [("55",)]
    # A request_id of one method cannot be reused for another.
    error = await rpc_error(unlink(users, ana.user_id, TELEGRAM, "55", request_id=request_id))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and "LinkIdentity" in error.details()


async def test_link_identity_errors(users, postgres_dsn):
    missing = str(uuid.uuid4())
    error = await rpc_error(link(users, missing, identity(WHATSAPP, "1")))
    assert error.code() == grpc.StatusCode.NOT_FOUND and missing in error.details()
    assert await query(postgres_dsn, "SELECT count(*) FROM user_requests") == [(0,)]
    ana = await create(users, "Ana")
    for request, field in [
        (rr.LinkIdentityRequest(request_id=rid(), user_id="x", identity=identity(WHATSAPP, "1")), "user_id"),
        (rr.LinkIdentityRequest(request_id=rid(), user_id=ana.user_id), "identity"),
        (rr.LinkIdentityRequest(request_id=rid(), user_id=ana.user_id, identity=identity(0, "1")), "identity.channel"),
        (rr.LinkIdentityRequest(request_id=rid(), user_id=ana.user_id, identity=identity(WHATSAPP, "")), "identity.external_id"),
        (rr.LinkIdentityRequest(user_id=ana.user_id, identity=identity(WHATSAPP, "1")), "request_id"),
    ]:
        error = await rpc_error(users.LinkIdentity(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in error.details()


async def test_unlink_identity_then_it_can_go_to_another_user(users, postgres_dsn):
    ana = await create(users, "Ana", identity(WHATSAPP, "1"), identity(TELEGRAM, "55"))
    bia = await create(users, "Bia")
    request_id = rid()
    after = await unlink(users, ana.user_id, WHATSAPP, "1", request_id=request_id)
    assert keys(after) == [(TELEGRAM, "55")]
    # A retry answers with the user; a new request finds nothing to unlink.
    assert await unlink(users, ana.user_id, WHATSAPP, "1", request_id=request_id) == after
    error = await rpc_error(unlink(users, ana.user_id, WHATSAPP, "1"))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "CHANNEL_WHATSAPP/1" in error.details()

    error = await rpc_error(users.ResolveIdentity(rr.ResolveIdentityRequest(channel=WHATSAPP, external_id="1")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert keys(await link(users, bia.user_id, identity(WHATSAPP, "1"))) == [(WHATSAPP, "1")]
    assert await query(postgres_dsn, "SELECT user_id::text FROM user_identities WHERE channel = %s", (WHATSAPP,)) == [
        (bia.user_id,)
    ]


async def test_unlink_identity_errors(users):
    ana = await create(users, "Ana", identity(WHATSAPP, "1"))
    bia = await create(users, "Bia")
    error = await rpc_error(unlink(users, bia.user_id, WHATSAPP, "1"))  # someone else's identity
    assert error.code() == grpc.StatusCode.NOT_FOUND and bia.user_id in error.details()
    missing = str(uuid.uuid4())
    error = await rpc_error(unlink(users, missing, WHATSAPP, "1"))
    assert error.code() == grpc.StatusCode.NOT_FOUND and missing in error.details()
    error = await rpc_error(unlink(users, ana.user_id, channel_pb2.CHANNEL_UNSPECIFIED, "1"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "channel" in error.details()
    error = await rpc_error(unlink(users, ana.user_id, WHATSAPP, ""))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "external_id" in error.details()
    assert keys((await users.GetUser(rr.GetUserRequest(user_id=ana.user_id))).user) == [(WHATSAPP, "1")]


# ResolveIdentity ---------------------------------------------------------------------------


async def test_resolve_identity(users):
    ana = await create(users, "Ana", identity(WHATSAPP, "1"), identity(TELEGRAM, "55"))
    for channel, external_id in [(WHATSAPP, "1"), (TELEGRAM, "55")]:
        resolved = (await users.ResolveIdentity(rr.ResolveIdentityRequest(channel=channel, external_id=external_id))).user
        assert resolved == ana
    # The same external id on another platform is another person.
    error = await rpc_error(users.ResolveIdentity(rr.ResolveIdentityRequest(channel=INSTAGRAM, external_id="1")))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "CHANNEL_INSTAGRAM/1" in error.details()
    for request, field in [
        (rr.ResolveIdentityRequest(external_id="1"), "channel"),
        (rr.ResolveIdentityRequest(channel=channel_pb2.CHANNEL_INTERNAL, external_id="1"), "channel"),
        (rr.ResolveIdentityRequest(channel=WHATSAPP), "external_id"),
    ]:
        error = await rpc_error(users.ResolveIdentity(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and field in error.details()


# Merged users (written directly here; MergeUsers itself is in test_user_merges.py) ---------


async def test_a_merged_user_is_still_returned_and_takes_no_new_identities(users, postgres_dsn):
    survivor = await create(users, "Ana")
    merged = await create(users, "Ana (old)")
    await execute(postgres_dsn, "UPDATE users SET merged_into_user_id = %s WHERE user_id = %s", (survivor.user_id, merged.user_id))
    read = (await users.GetUser(rr.GetUserRequest(user_id=merged.user_id))).user
    assert read.merged_into_user_id == survivor.user_id and read.display_name == "Ana (old)"
    error = await rpc_error(link(users, merged.user_id, identity(WHATSAPP, "1")))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and survivor.user_id in error.details()
    assert await query(postgres_dsn, "SELECT count(*) FROM user_identities") == [(0,)]


async def test_every_lookup_path_has_an_index(users, postgres_dsn):
    indexes = {
        row[0]
        for row in await query(
            postgres_dsn, "SELECT indexdef FROM pg_indexes WHERE tablename IN ('users', 'user_identities', 'user_requests')"
        )
    }
    # Identities are unique per client (the same number may be a user of two clients).
    assert any("user_identities" in i and "(owner_client_id, channel, external_id)" in i and "UNIQUE" in i for i in indexes)
    assert any("user_identities" in i and "(user_id, link_time)" in i for i in indexes)
    assert any("user_requests" in i and "(request_id)" in i and "UNIQUE" in i for i in indexes)
