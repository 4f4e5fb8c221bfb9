"""The UserService gRPC servicer: checks requests, then leaves the rest to the store.

MergeUsers still answers UNIMPLEMENTED: its contract moves conversation
memberships and message history too, which live in other services and need a
merge event that no contract defines yet. Moving only the identities here
would be a partial merge that looks complete.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import grpc
from chat4all.channel.v1 import channel_pb2
from chat4all.users.v1 import message_pb2, request_response_pb2 as rr, service_pb2, service_pb2_grpc

from services.runtime import change_feed
from services.runtime.app import Runtime
from services.runtime.errors import InvalidArgument
from services.runtime.idempotency import request_hash
from services.runtime.validation import parse_request_id, parse_uuid
from services.users.store import Identity, UserStore

SERVICE = service_pb2.DESCRIPTOR.services_by_name["UserService"]
SERVICE_NAME = SERVICE.full_name
MIGRATIONS = Path(__file__).parent / "migrations"

_CHANNELS = set(channel_pb2.Channel.values())
# Identities are accounts on external platforms.
_NOT_PLATFORMS = {channel_pb2.CHANNEL_UNSPECIFIED, channel_pb2.CHANNEL_INTERNAL}


class UserService(service_pb2_grpc.UserServiceServicer):
    def __init__(self, store: UserStore, announce: change_feed.Announce = change_feed.nobody) -> None:
        self.store = store
        # Tells the caches of other services (routing) this user's identities changed.
        self.announce = announce

    async def CreateUser(self, request: rr.CreateUserRequest, context: grpc.aio.ServicerContext) -> rr.CreateUserResponse:
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
        user = await self.store.create_user(
            request_id, request_hash("CreateUser", normalised), request.display_name, preferred, identities
        )
        return rr.CreateUserResponse(user=user)

    async def GetUser(self, request: rr.GetUserRequest, context: grpc.aio.ServicerContext) -> rr.GetUserResponse:
        return rr.GetUserResponse(user=await self.store.get_user(parse_uuid(request.user_id, "user_id")))

    async def LinkIdentity(
        self, request: rr.LinkIdentityRequest, context: grpc.aio.ServicerContext
    ) -> rr.LinkIdentityResponse:
        request_id = parse_request_id(request.request_id)
        user_id = parse_uuid(request.user_id, "user_id")
        if not request.HasField("identity"):
            raise InvalidArgument("identity is required")
        identity = _identity("identity", request.identity)
        normalised = rr.LinkIdentityRequest()
        normalised.CopyFrom(request)
        normalised.identity.ClearField("link_time")
        user = await self.store.link_identity(request_id, request_hash("LinkIdentity", normalised), user_id, identity)
        await self.announce(str(user_id))
        return rr.LinkIdentityResponse(user=user)

    async def UnlinkIdentity(
        self, request: rr.UnlinkIdentityRequest, context: grpc.aio.ServicerContext
    ) -> rr.UnlinkIdentityResponse:
        request_id = parse_request_id(request.request_id)
        user_id = parse_uuid(request.user_id, "user_id")
        channel = _channel("channel", request.channel)
        external_id = _external_id("external_id", request.external_id)
        user = await self.store.unlink_identity(
            request_id, request_hash("UnlinkIdentity", request), user_id, channel, external_id
        )
        await self.announce(str(user_id))
        return rr.UnlinkIdentityResponse(user=user)

    async def ResolveIdentity(
        self, request: rr.ResolveIdentityRequest, context: grpc.aio.ServicerContext
    ) -> rr.ResolveIdentityResponse:
        channel = _channel("channel", request.channel)
        external_id = _external_id("external_id", request.external_id)
        return rr.ResolveIdentityResponse(user=await self.store.resolve_identity(channel, external_id))


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
    pool = await runtime.postgres("users", MIGRATIONS)
    announce = partial(change_feed.announce, await runtime.redis(), change_feed.USERS)
    runtime.add_servicer(service_pb2_grpc.add_UserServiceServicer_to_server, UserService(UserStore(pool), announce), SERVICE_NAME)
