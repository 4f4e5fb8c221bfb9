"""Asks UserService whether the users about to become members exist.

Users live in UserService's own tables; this service only knows their ids, so
it checks them over the gRPC API.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
from chat4all.users.v1 import request_response_pb2, service_pb2_grpc

from services.runtime.errors import FailedPrecondition, NotFound, Unavailable

# The timeout of proto/chat4all/users/v1/users_grpc_service_config.json.
CALL_TIMEOUT_SECONDS = 5.0


class UserDirectory:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._users = service_pb2_grpc.UserServiceStub(channel)

    async def require_users(self, user_ids: list[uuid.UUID]) -> None:
        """NOT_FOUND naming an unknown user; FAILED_PRECONDITION for a merged-away one."""
        await asyncio.gather(*(self._require_user(user_id) for user_id in dict.fromkeys(user_ids)))

    async def _require_user(self, user_id: uuid.UUID) -> None:
        try:
            response = await self._users.GetUser(
                request_response_pb2.GetUserRequest(user_id=str(user_id)), timeout=CALL_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"user {user_id} does not exist") from None
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                # Nothing was written yet: the caller may retry with the same request_id.
                raise Unavailable(f"cannot check user {user_id}: user service {error.code().name}") from None
            raise
        if response.user.merged_into_user_id:
            raise FailedPrecondition(f"user {user_id} was merged into {response.user.merged_into_user_id}; use that user")
