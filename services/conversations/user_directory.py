"""Asks UserService whether the users about to become members exist, and whether
a merge whose memberships are to move really happened.

Users live in UserService's own tables; this service only knows their ids, so
it checks them over the gRPC API, on behalf of the calling client: another client's
user is NOT_FOUND there, as one that does not exist.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
from chat4all.users.v1 import message_pb2 as user_pb2, request_response_pb2, service_pb2_grpc

from services.runtime.errors import FailedPrecondition, NotFound, Unavailable
from services.runtime.tenancy import client_metadata

# The timeout of proto/chat4all/users/v1/users_grpc_service_config.json.
CALL_TIMEOUT_SECONDS = 5.0


class UserDirectory:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._users = service_pb2_grpc.UserServiceStub(channel)

    async def require_users(self, user_ids: list[uuid.UUID], caller: str | None = None) -> None:
        """NOT_FOUND naming an unknown user (or one of another client than `caller`);
        FAILED_PRECONDITION for a merged-away one."""
        await asyncio.gather(*(self._require_user(user_id, caller) for user_id in dict.fromkeys(user_ids)))

    async def require_merged(self, source: uuid.UUID, target: uuid.UUID) -> None:
        """ApplyUserMerge moves memberships only for a merge UserService has made: NOT_FOUND for an
        unknown source, FAILED_PRECONDITION if it is not merged into the target."""
        merged_into = (await self._get_user(source)).merged_into_user_id
        if merged_into != str(target):
            now = f"merged into {merged_into}" if merged_into else "not merged"
            raise FailedPrecondition(f"user {source} is {now}, not merged into {target}; merge them with MergeUsers")

    async def _require_user(self, user_id: uuid.UUID, caller: str | None) -> None:
        user = await self._get_user(user_id, caller)
        if user.merged_into_user_id:
            raise FailedPrecondition(f"user {user_id} was merged into {user.merged_into_user_id}; use that user")

    async def _get_user(self, user_id: uuid.UUID, caller: str | None = None) -> user_pb2.User:
        try:
            response = await self._users.GetUser(
                request_response_pb2.GetUserRequest(user_id=str(user_id)),
                timeout=CALL_TIMEOUT_SECONDS,
                metadata=client_metadata(caller),
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"user {user_id} does not exist") from None
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                # Nothing was written yet: the caller may retry with the same request_id.
                raise Unavailable(f"cannot check user {user_id}: user service {error.code().name}") from None
            raise
        return response.user
