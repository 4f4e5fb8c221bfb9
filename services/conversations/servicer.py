"""The ConversationService gRPC servicer: checks requests, asks UserService that
members exist (and that a merge to apply happened), and leaves the rest to the
store and, for merges, to user_merges.

Conversations belong to the client that created them (services/runtime/tenancy.py): a client
sees and changes only its own, and its members must be its own users (UserService is asked
on the client's behalf, so another client's user is NOT_FOUND there too)."""

from __future__ import annotations

import datetime
import hashlib
import uuid
from functools import partial
from pathlib import Path

import grpc
from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as pb, request_response_pb2 as rr, service_pb2, service_pb2_grpc

from services.conversations.settings import ConversationSettings
from services.conversations.store import Binding, ConversationStore, MemberSpec
from services.conversations.user_directory import UserDirectory
from services.conversations.user_merges import UserMerges
from services.runtime import change_feed, page_tokens
from services.runtime.app import Runtime
from services.runtime.errors import InvalidArgument
from services.runtime.idempotency import request_hash
from services.runtime.shared_cache import SharedCache, cache_namespace
from services.runtime.tenancy import caller_client, owner_for_new, require_owner, scoped_digest, split_owner, with_owner
from services.runtime.validation import page_size, parse_request_id, parse_uuid

SERVICE = service_pb2.DESCRIPTOR.services_by_name["ConversationService"]
SERVICE_NAME = SERVICE.full_name
MIGRATIONS = Path(__file__).parent / "migrations"

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000  # the contract: "values above 1000 are treated as 1000"

_CHANNELS = set(channel_pb2.Channel.values())
_ROLES = set(pb.MemberRole.values())
_TYPES = {pb.CONVERSATION_TYPE_DIRECT, pb.CONVERSATION_TYPE_GROUP}


class ConversationService(service_pb2_grpc.ConversationServiceServicer):
    def __init__(
        self,
        store: ConversationStore,
        users: UserDirectory,
        cache: SharedCache,
        announce: change_feed.Announce = change_feed.nobody,
    ) -> None:
        self.store = store
        self.merges = UserMerges(store.pool)
        self.users = users
        # Conversations with their members (checked on every send, read on every route).
        self.cache = cache
        # Tells the caches of other services (membership checks, routing) this conversation changed.
        self.announce = announce

    async def _changed(self, conversation_id: uuid.UUID) -> None:
        """After a committed change: drop the shared copy first, then tell the in-process caches
        (which reload through GetConversation, so they must not find the old copy)."""
        await self.cache.invalidate(_conversation_key(conversation_id))
        await self.announce(str(conversation_id))

    async def CreateConversation(
        self, request: rr.CreateConversationRequest, context: grpc.aio.ServicerContext
    ) -> rr.CreateConversationResponse:
        caller = caller_client(context)
        request_id = parse_request_id(request.request_id)
        if request.type not in _TYPES:
            raise InvalidArgument(f"type must be CONVERSATION_TYPE_DIRECT or CONVERSATION_TYPE_GROUP, got {request.type}")
        members = [_member(f"members[{n}]", m) for n, m in enumerate(request.members)]
        seen: set[uuid.UUID] = set()
        for n, member in enumerate(members):
            if member.user_id in seen:
                raise InvalidArgument(f"members[{n}]: user {member.user_id} is listed twice")
            seen.add(member.user_id)
        binding = None
        if request.type == pb.CONVERSATION_TYPE_DIRECT:
            if len(members) != 2:
                raise InvalidArgument(f"members: a direct conversation needs exactly two members, got {len(members)}")
            if request.HasField("platform_binding"):
                raise InvalidArgument("platform_binding: only group conversations can be bound to a platform group")
        else:
            if not members:
                raise InvalidArgument("members: a group conversation needs at least one member")
            if request.HasField("platform_binding"):
                binding = _binding("platform_binding", request.platform_binding)
        await self.users.require_users([m.user_id for m in members], caller)
        # join_time is ignored on input, so it does not make two requests different.
        normalised = rr.CreateConversationRequest()
        normalised.CopyFrom(request)
        for member in normalised.members:
            member.ClearField("join_time")
        conversation = await self.store.create_conversation(
            request_id,
            scoped_digest(request_hash("CreateConversation", normalised), caller),
            request.type,
            request.title,
            members,
            binding,
            owner=owner_for_new(caller),
        )
        return rr.CreateConversationResponse(conversation=conversation)

    async def GetConversation(
        self, request: rr.GetConversationRequest, context: grpc.aio.ServicerContext
    ) -> rr.GetConversationResponse:
        conversation_id = parse_uuid(request.conversation_id, "conversation_id")

        async def load() -> bytes:
            owner, conversation = await self.store.get_owned_conversation(conversation_id)
            return with_owner(owner, conversation.SerializeToString())

        owner, conversation = split_owner(await self.cache.get(_conversation_key(conversation_id), load))
        require_owner(caller_client(context), owner, f"conversation_id: no conversation {conversation_id}")
        return rr.GetConversationResponse(conversation=pb.Conversation.FromString(conversation))

    async def ListConversations(
        self, request: rr.ListConversationsRequest, context: grpc.aio.ServicerContext
    ) -> rr.ListConversationsResponse:
        caller = caller_client(context)
        limit = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        member_user_id = parse_uuid(request.member_user_id, "member_user_id") if request.member_user_id else None
        binding = _binding("platform_binding", request.platform_binding) if request.HasField("platform_binding") else None
        # A token only continues the listing it came from (same caller and filters; page_size may change).
        caller_label = "internal" if caller is None else f"client {caller}"
        scope = _scope("conversations", caller_label, str(member_user_id or ""), binding.label if binding else "")
        after = None
        if request.page_token:
            position = page_tokens.decode(request.page_token, scope)
            try:
                after = (datetime.datetime.fromisoformat(position["t"]), uuid.UUID(position["id"]))
            except (KeyError, TypeError, ValueError):
                raise InvalidArgument("page_token is malformed") from None
        conversations, last = await self.store.list_conversations(limit, after, member_user_id, binding, caller)
        token = page_tokens.encode(scope, t=last[0].isoformat(), id=str(last[1])) if last else ""
        return rr.ListConversationsResponse(conversations=conversations, next_page_token=token)

    async def AddMember(self, request: rr.AddMemberRequest, context: grpc.aio.ServicerContext) -> rr.AddMemberResponse:
        caller = caller_client(context)
        request_id = parse_request_id(request.request_id)
        conversation_id = parse_uuid(request.conversation_id, "conversation_id")
        if not request.HasField("member"):
            raise InvalidArgument("member is required")
        member = _member("member", request.member)
        await self.users.require_users([member.user_id], caller)
        normalised = rr.AddMemberRequest()
        normalised.CopyFrom(request)
        normalised.member.ClearField("join_time")
        conversation = await self.store.add_member(
            request_id, scoped_digest(request_hash("AddMember", normalised), caller), conversation_id, member, caller
        )
        await self._changed(conversation_id)
        return rr.AddMemberResponse(conversation=conversation)

    async def RemoveMember(
        self, request: rr.RemoveMemberRequest, context: grpc.aio.ServicerContext
    ) -> rr.RemoveMemberResponse:
        caller = caller_client(context)
        request_id = parse_request_id(request.request_id)
        conversation_id = parse_uuid(request.conversation_id, "conversation_id")
        user_id = parse_uuid(request.user_id, "user_id")
        digest = scoped_digest(request_hash("RemoveMember", request), caller)
        conversation = await self.store.remove_member(request_id, digest, conversation_id, user_id, request.reason, caller)
        await self._changed(conversation_id)
        return rr.RemoveMemberResponse(conversation=conversation)

    async def ListMembershipChanges(
        self, request: rr.ListMembershipChangesRequest, context: grpc.aio.ServicerContext
    ) -> rr.ListMembershipChangesResponse:
        conversation_id = parse_uuid(request.conversation_id, "conversation_id")
        limit = page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        scope = _scope("membership-changes", str(conversation_id))
        after_seq = 0
        if request.page_token:
            after_seq = page_tokens.decode(request.page_token, scope).get("seq")
            if type(after_seq) is not int or after_seq < 0:
                raise InvalidArgument("page_token is malformed")
        changes, last = await self.store.list_membership_changes(conversation_id, limit, after_seq, caller_client(context))
        token = page_tokens.encode(scope, seq=last) if last is not None else ""
        return rr.ListMembershipChangesResponse(membership_changes=changes, next_page_token=token)

    async def ApplyUserMerge(
        self, request: rr.ApplyUserMergeRequest, context: grpc.aio.ServicerContext
    ) -> rr.ApplyUserMergeResponse:
        request_id = parse_request_id(request.request_id)
        source = parse_uuid(request.source_user_id, "source_user_id")
        target = parse_uuid(request.target_user_id, "target_user_id")
        if source == target:
            raise InvalidArgument("target_user_id: a user cannot be merged into itself")
        # Internal, but reachable: it moves memberships only for a merge UserService confirms.
        await self.users.require_merged(source, target)
        changed = await self.merges.apply(request_id, source, target)
        # Every time, not only the first: a call repeated after a crash between the commit and
        # the announcements still empties the other services' caches.
        for conversation_id in changed:
            await self._changed(conversation_id)
        return rr.ApplyUserMergeResponse(conversation_ids=[str(c) for c in changed])


def _conversation_key(conversation_id: uuid.UUID) -> str:
    """The shared copy of a conversation, which carries its owner (tenancy.with_owner)."""
    return f"owned-conversation:{conversation_id}"


def _scope(listing: str, *filters: str) -> str:
    """What a page token is bound to: the listing and a digest of its filters (not the filters)."""
    return listing + ":" + hashlib.sha256("\0".join(filters).encode()).hexdigest()[:16]


# Request checks: INVALID_ARGUMENT naming the field -----------------------------------------




def _member(field: str, member: pb.Member) -> MemberSpec:
    if member.role not in _ROLES:
        raise InvalidArgument(f"{field}.role: unknown role {member.role}")
    if member.preferred_channel not in _CHANNELS:
        raise InvalidArgument(f"{field}.preferred_channel: unknown channel {member.preferred_channel}")
    return MemberSpec(
        user_id=parse_uuid(member.user_id, f"{field}.user_id"),
        role=member.role or pb.MEMBER_ROLE_MEMBER,
        preferred_channel=member.preferred_channel,
    )


def _binding(field: str, binding: pb.PlatformBinding) -> Binding:
    if binding.channel not in _CHANNELS:
        raise InvalidArgument(f"{field}.channel: unknown channel {binding.channel}")
    if binding.channel in (channel_pb2.CHANNEL_UNSPECIFIED, channel_pb2.CHANNEL_INTERNAL):
        raise InvalidArgument(f"{field}.channel must be an external platform, not {channel_pb2.Channel.Name(binding.channel)}")
    if not binding.account_id.strip():
        raise InvalidArgument(f"{field}.account_id is required")
    if not binding.external_group_id.strip():
        raise InvalidArgument(f"{field}.external_group_id is required")
    return Binding(binding.channel, binding.account_id, binding.external_group_id)


async def setup(runtime: Runtime) -> None:
    settings = runtime.settings
    if not isinstance(settings, ConversationSettings):
        raise TypeError("the conversations service runs with ConversationSettings (it needs users_target)")
    pool = await runtime.postgres("conversations", MIGRATIONS)
    users = UserDirectory(await runtime.channel(settings.users_target))
    client = await runtime.redis()
    cache = SharedCache(client, cache_namespace(settings.postgres_dsn, "conversations"))
    runtime.add_servicer(
        service_pb2_grpc.add_ConversationServiceServicer_to_server,
        ConversationService(ConversationStore(pool), users, cache, partial(change_feed.announce, client, change_feed.CONVERSATIONS)),
        SERVICE_NAME,
    )
