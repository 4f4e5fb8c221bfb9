"""The UserService gRPC servicer: checks requests, then leaves the rest to the store
(and, for MergeUsers, to the merge store and the membership hand-over).

Users belong to the client that created them (services/runtime/tenancy.py): a client sees,
changes and merges only its own, and resolves identities among its own users."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from functools import partial
from pathlib import Path

import grpc
from chat4all.channel.v1 import channel_pb2
from chat4all.users.v1 import message_pb2, request_response_pb2 as rr, service_pb2, service_pb2_grpc

from services.runtime import change_feed
from services.runtime.app import Runtime
from services.runtime.errors import FailedPrecondition, InvalidArgument
from services.runtime.idempotency import request_hash
from services.runtime.shared_cache import SharedCache, cache_namespace
from services.runtime.tenancy import caller_client, owner_for_new, require_owner, scoped_digest, split_owner, with_owner
from services.runtime.validation import parse_request_id, parse_uuid
from services.users.merges import MergeStore
from services.users.memberships import MembershipHandover
from services.users.settings import UserSettings
from services.users.store import MAX_MERGE_HOPS, Identity, UserStore

SERVICE = service_pb2.DESCRIPTOR.services_by_name["UserService"]
SERVICE_NAME = SERVICE.full_name
MIGRATIONS = Path(__file__).parent / "migrations"

_CHANNELS = set(channel_pb2.Channel.values())
# Identities are accounts on external platforms.
_NOT_PLATFORMS = {channel_pb2.CHANNEL_UNSPECIFIED, channel_pb2.CHANNEL_INTERNAL}


class UserService(service_pb2_grpc.UserServiceServicer):
    def __init__(
        self,
        store: UserStore,
        merges: MergeStore,
        memberships: MembershipHandover,
        cache: SharedCache,
        announce: change_feed.Announce = change_feed.nobody,
    ) -> None:
        self.store = store
        # Users and identity lookups (every inbound message resolves its sender) for all replicas.
        self.cache = cache
        self.merges = merges
        self.memberships = memberships
        # Tells the caches of other services (routing) this user's identities changed.
        self.announce = announce

    async def CreateUser(self, request: rr.CreateUserRequest, context: grpc.aio.ServicerContext) -> rr.CreateUserResponse:
        caller = caller_client(context)
        request_id = parse_request_id(request.request_id)
        if not request.display_name.strip():
            raise InvalidArgument("display_name is required")
        preferred = _channel("preferred_channel", request.preferred_channel, allow_unspecified=True)
        identities = [_identity(f"identities[{n}]", i) for n, i in enumerate(request.identities)]
        seen: set[tuple[int, str]] = set()
        for n, identity in enumerate(identities):
            if (identity.channel, identity.external_id) in seen:
                raise InvalidArgument(f"identities[{n}]: {identity.label} is listed twice")
            seen.add((identity.channel, identity.external_id))
        # link_time is ignored on input, so it does not make two requests different.
        normalised = rr.CreateUserRequest()
        normalised.CopyFrom(request)
        for identity in normalised.identities:
            identity.ClearField("link_time")
        digest = scoped_digest(request_hash("CreateUser", normalised), caller)
        user = await self.store.create_user(
            request_id, digest, owner_for_new(caller), request.display_name, preferred, identities
        )
        return rr.CreateUserResponse(user=user)

    async def GetUser(self, request: rr.GetUserRequest, context: grpc.aio.ServicerContext) -> rr.GetUserResponse:
        return rr.GetUserResponse(user=await self._user(parse_uuid(request.user_id, "user_id"), caller_client(context)))

    async def _changed(self, user_ids: list[uuid.UUID], identity_keys: tuple[str, ...] = ()) -> None:
        """After a committed change: drop the shared copies first, then tell the in-process
        caches of other services (which reload through GetUser, so must not find an old copy)."""
        await self.cache.invalidate(*(_user_key(user_id) for user_id in user_ids), *identity_keys)
        for user_id in user_ids:
            await self.announce(str(user_id))

    async def _user(self, user_id: uuid.UUID, caller: str | None) -> message_pb2.User:
        """The user, NOT_FOUND (as for an unknown id) if it is another client's."""

        async def load() -> bytes:
            owner, user = await self.store.get_owned_user(user_id)
            return with_owner(owner, user.SerializeToString())

        owner, user = split_owner(await self.cache.get(_user_key(user_id), load))
        require_owner(caller, owner, f"user_id: no user {user_id}")
        return message_pb2.User.FromString(user)

    async def LinkIdentity(
        self, request: rr.LinkIdentityRequest, context: grpc.aio.ServicerContext
    ) -> rr.LinkIdentityResponse:
        caller = caller_client(context)
        request_id = parse_request_id(request.request_id)
        user_id = parse_uuid(request.user_id, "user_id")
        if not request.HasField("identity"):
            raise InvalidArgument("identity is required")
        identity = _identity("identity", request.identity)
        normalised = rr.LinkIdentityRequest()
        normalised.CopyFrom(request)
        normalised.identity.ClearField("link_time")
        digest = scoped_digest(request_hash("LinkIdentity", normalised), caller)
        owner, user = await self.store.link_identity(request_id, digest, user_id, identity, caller)
        await self._changed([user_id], (_identity_key(owner, identity.channel, identity.external_id),))
        return rr.LinkIdentityResponse(user=user)

    async def UnlinkIdentity(
        self, request: rr.UnlinkIdentityRequest, context: grpc.aio.ServicerContext
    ) -> rr.UnlinkIdentityResponse:
        caller = caller_client(context)
        request_id = parse_request_id(request.request_id)
        user_id = parse_uuid(request.user_id, "user_id")
        channel = _channel("channel", request.channel)
        external_id = _external_id("external_id", request.external_id)
        digest = scoped_digest(request_hash("UnlinkIdentity", request), caller)
        owner, user = await self.store.unlink_identity(request_id, digest, user_id, channel, external_id, caller)
        await self._changed([user_id], (_identity_key(owner, channel, external_id),))
        return rr.UnlinkIdentityResponse(user=user)

    async def ResolveIdentity(
        self, request: rr.ResolveIdentityRequest, context: grpc.aio.ServicerContext
    ) -> rr.ResolveIdentityResponse:
        caller = caller_client(context)
        channel = _channel("channel", request.channel)
        external_id = _external_id("external_id", request.external_id)
        # Identities are per client: a client resolves among its own users, an internal caller
        # among the unowned ones (the router names the client that owns its platform accounts).
        namespace = owner_for_new(caller)

        async def load() -> bytes:
            return (await self.store.resolve_identity(namespace, channel, external_id)).user_id.encode()

        key = _identity_key(namespace, channel, external_id)
        user = await self._user(uuid.UUID((await self.cache.get(key, load)).decode()), caller)
        # A cached holder may have been merged since (merges never undo): follow to the survivor.
        for _ in range(MAX_MERGE_HOPS):
            if not user.merged_into_user_id:
                return rr.ResolveIdentityResponse(user=user)
            user = await self._user(uuid.UUID(user.merged_into_user_id), caller)
        raise FailedPrecondition(f"the owner of {channel_pb2.Channel.Name(channel)} {external_id} is merged through too many users")

    async def MergeUsers(self, request: rr.MergeUsersRequest, context: grpc.aio.ServicerContext) -> rr.MergeUsersResponse:
        caller = caller_client(context)
        request_id = parse_request_id(request.request_id)
        source = parse_uuid(request.source_user_id, "source_user_id")
        target = parse_uuid(request.target_user_id, "target_user_id")
        if source == target:
            raise InvalidArgument("target_user_id: source and target are the same user")
        digest = scoped_digest(request_hash("MergeUsers", request), caller)
        merge = await self.merges.merge(request_id, digest, source, target, caller)
        # Also on a retry: it may follow a crash between the commit and the announcements.
        await self._changed([source, target])
        # Committed above; a retry with the same request_id (or the follow-up task) finishes this.
        await self.memberships.complete(merge)
        return rr.MergeUsersResponse(user=await self._user(target, caller))


# Shared cache keys. A user's copy carries its owner (tenancy.with_owner), so a cache hit is
# checked like a read; an identity's is per owner, since each client has its own identities.


def _user_key(user_id: uuid.UUID) -> str:
    return f"owned-user:{user_id}"


def _identity_key(owner: str, channel: int, external_id: str) -> str:
    # The owner's length first: no other (owner, external_id) pair spells the same key.
    return f"identity:{channel}:{len(owner)}:{owner}:{external_id}"


# Request checks: INVALID_ARGUMENT naming the field -----------------------------------------


def _channel(field: str, value: int, *, allow_unspecified: bool = False) -> int:
    if value not in _CHANNELS:
        raise InvalidArgument(f"{field}: unknown channel {value}")
    if allow_unspecified:
        return value
    if value in _NOT_PLATFORMS:
        raise InvalidArgument(f"{field} must be an external platform, not {channel_pb2.Channel.Name(value)}")
    return value


def _external_id(field: str, value: str) -> str:
    if not value.strip():
        raise InvalidArgument(f"{field} is required")
    return value


def _identity(field: str, identity: message_pb2.ExternalIdentity) -> Identity:
    return Identity(
        channel=_channel(f"{field}.channel", identity.channel),
        external_id=_external_id(f"{field}.external_id", identity.external_id),
        display_name=identity.display_name,
    )


async def setup(runtime: Runtime) -> None:
    settings = runtime.settings
    if not isinstance(settings, UserSettings):
        raise TypeError("the users service runs with UserSettings (it needs conversations_target)")
    pool = await runtime.postgres("users", MIGRATIONS)
    client = await runtime.redis()
    announce = partial(change_feed.announce, client, change_feed.USERS)
    cache = SharedCache(client, cache_namespace(settings.postgres_dsn, "users"))
    merges = MergeStore(pool)
    memberships = MembershipHandover(merges, await runtime.channel(settings.conversations_target))
    runtime.add_servicer(
        service_pb2_grpc.add_UserServiceServicer_to_server,
        UserService(UserStore(pool), merges, memberships, cache, announce),
        SERVICE_NAME,
    )
    stopping = asyncio.Event()
    follow_up = asyncio.create_task(
        memberships.follow_up_forever(settings.merge_follow_up_seconds, stopping), name="merge follow-up"
    )

    async def stop_follow_up() -> None:
        stopping.set()
        follow_up.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follow_up

    runtime.on_shutdown(stop_follow_up)
