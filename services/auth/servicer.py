"""The ApiKeyService gRPC servicer, and `setup`, which also serves Envoy's Check on the same
port with the key cache and the rate limiter behind it."""

from __future__ import annotations

import datetime
import logging
import re
from pathlib import Path

import grpc
import redis.asyncio as redis
from chat4all.auth.v1 import request_response_pb2 as rr, service_pb2, service_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.auth import scopes
from services.auth.ext_authz import SERVICE_NAME as CHECK_SERVICE_NAME, Authorization
from services.auth.front_door import FrontDoor
from services.auth.settings import AuthSettings
from services.auth.store import ApiKeyStore, NewKey, StoredKey
from services.runtime import change_feed, page_tokens
from services.runtime.app import Runtime
from services.runtime.callers import ANONYMOUS, client_id, is_internal, require_scope
from services.runtime.errors import InvalidArgument, PermissionDenied
from services.runtime.idempotency import request_hash
from services.runtime.rate_limits import RateLimiter
from services.runtime.validation import page_size, parse_request_id

log = logging.getLogger("chat4all.auth")

SERVICE = service_pb2.DESCRIPTOR.services_by_name["ApiKeyService"]
SERVICE_NAME = SERVICE.full_name
MIGRATIONS = Path(__file__).parent / "migrations"

MAX_DISPLAY_NAME = 256
# A client id travels in a header and names Redis keys: plain characters only.
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")


def revocations_channel(redis_prefix: str) -> str:
    """Where RevokeApiKey announces a key id, so every replica drops it from its cache."""
    return f"{redis_prefix}:revoked"


class ApiKeyService(service_pb2_grpc.ApiKeyServiceServicer):
    def __init__(self, store: ApiKeyStore, announce: change_feed.Announce = change_feed.nobody) -> None:
        self.store = store
        # Tells every replica's key cache (this one's too) that a key was revoked.
        self.announce = announce

    async def CreateApiKey(
        self, request: rr.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> rr.CreateApiKeyResponse:
        require_scope(context, "admin")
        request_id = parse_request_id(request.request_id)
        new = new_key(request)
        confined = _confined_to(context)
        if confined is not None and new.client_id != confined:
            raise PermissionDenied("api_key.client_id: a key may only make keys for its own client")
        # Output-only fields are ignored, so they do not make two requests different.
        normalised = rr.CreateApiKeyRequest()
        normalised.CopyFrom(request)
        for field in ("key_id", "create_time", "revoke_time"):
            normalised.api_key.ClearField(field)
        key, secret = await self.store.create_key(
            client_id(context), request_id, request_hash("CreateApiKey", normalised), new
        )
        return rr.CreateApiKeyResponse(api_key=key, secret=secret)

    async def RevokeApiKey(
        self, request: rr.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> rr.RevokeApiKeyResponse:
        require_scope(context, "admin")
        if not _KEY_ID.fullmatch(request.key_id):
            raise InvalidArgument("key_id must be 16 hex digits")
        key = await self.store.revoke_key(request.key_id, _confined_to(context))
        # Also when it was revoked already: an earlier announcement may have been lost.
        await self.announce(key.key_id)
        return rr.RevokeApiKeyResponse(api_key=key)

    async def ListApiKeys(
        self, request: rr.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> rr.ListApiKeysResponse:
        require_scope(context, "admin")
        if request.client_id and not _CLIENT_ID.fullmatch(request.client_id):
            raise InvalidArgument("client_id is malformed")
        owner = request.client_id
        confined = _confined_to(context)
        if confined is not None:
            if owner and owner != confined:
                raise PermissionDenied("client_id: a key may only list its own client's keys")
            owner = confined
        limit = page_size(request.page_size)
        scope = f"api-keys:{owner}"
        after = None
        if request.page_token:
            position = page_tokens.decode(request.page_token, scope)
            after = (_parse_time(position.get("t")), position.get("id"))
            if not isinstance(after[1], str) or not _KEY_ID.fullmatch(after[1]):
                raise InvalidArgument("page_token is malformed")
        keys, last = await self.store.list_keys(owner, limit, after)
        response = rr.ListApiKeysResponse(api_keys=keys)
        if last is not None:
            stamp = Timestamp()
            stamp.FromDatetime(last[0])
            response.next_page_token = page_tokens.encode(scope, t=stamp.ToJsonString(), id=last[1])
        return response


def _confined_to(context: grpc.aio.ServicerContext) -> str | None:
    """The client whose keys the caller may manage: its own, when it came through the front
    door (an admin key of one client must not mint keys for another); None (every client) for
    internal calls and the command line."""
    return None if is_internal(context) else client_id(context)


# Request checks: INVALID_ARGUMENT naming the field -----------------------------------------


def new_key(request: rr.CreateApiKeyRequest) -> NewKey:
    if not request.HasField("api_key"):
        raise InvalidArgument("api_key is required")
    key = request.api_key
    if not key.client_id:
        raise InvalidArgument("api_key.client_id is required")
    if not _CLIENT_ID.fullmatch(key.client_id):
        raise InvalidArgument("api_key.client_id: up to 128 letters, digits and . _ : @ -, starting with a letter or digit")
    if key.client_id == ANONYMOUS:
        raise InvalidArgument(f"api_key.client_id: {ANONYMOUS!r} is the client of internal calls")
    if len(key.display_name) > MAX_DISPLAY_NAME:
        raise InvalidArgument(f"api_key.display_name: at most {MAX_DISPLAY_NAME} characters")
    if not key.scopes:
        raise InvalidArgument("api_key.scopes: at least one scope is required")
    for n, scope in enumerate(key.scopes):
        if scope not in scopes.NAMES:
            raise InvalidArgument(f"api_key.scopes[{n}]: unknown scope {scope}")
    if key.requests_per_second < 0:
        raise InvalidArgument("api_key.requests_per_second must not be negative")
    return NewKey(key.client_id, key.display_name, sorted(set(key.scopes)), key.requests_per_second)


def _parse_time(value: object):
    stamp = Timestamp()
    try:
        stamp.FromJsonString(str(value))
    except ValueError:
        raise InvalidArgument("page_token is malformed") from None
    return stamp.ToDatetime(tzinfo=datetime.timezone.utc)


async def setup(runtime: Runtime) -> None:
    settings = runtime.settings
    if not isinstance(settings, AuthSettings):
        raise TypeError("the auth service runs with AuthSettings")
    pool = await runtime.postgres("auth", MIGRATIONS)
    client = await runtime.redis()
    store = ApiKeyStore(pool)
    channel = revocations_channel(settings.auth_redis_prefix)
    # Verified keys for a couple of seconds; a revocation announced on Redis drops one at once.
    keys: change_feed.ChangeFedCache[StoredKey | None] = change_feed.ChangeFedCache(
        client, channel, store.find_key, max_age=settings.auth_cache_seconds
    )
    await keys.start()
    runtime.on_shutdown(keys.stop)
    front_door = FrontDoor(
        keys.get,
        RateLimiter(client, f"{settings.auth_redis_prefix}:rate"),
        scopes.required_scopes(),
        settings.auth_default_requests_per_second,
        settings.auth_rate_limit_timeout_seconds,
    )

    async def announce(key_id: str) -> None:
        keys.forget(key_id)  # this replica at once, before the answer
        try:
            await change_feed.announce(client, channel, key_id)
        except (redis.RedisError, OSError) as error:
            # Committed: the other replicas' caches let the key go within C4A_AUTH_CACHE_SECONDS.
            log.warning("revocation not announced", extra={"key_id": key_id, "error": repr(error)})

    runtime.add_servicer(service_pb2_grpc.add_ApiKeyServiceServicer_to_server, ApiKeyService(store, announce), SERVICE_NAME)
    runtime.add_generic_handler(Authorization(front_door).handler(), CHECK_SERVICE_NAME)
