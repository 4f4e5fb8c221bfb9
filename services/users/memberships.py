"""The second half of a merge: the source's conversation memberships follow the
survivor. ConversationService owns those tables, so UserService asks it over gRPC
(ApplyUserMerge) once the merge is committed here, and records the answer.

ApplyUserMerge is idempotent, so the step is retried until it is confirmed: by
MergeUsers itself, by a client retrying MergeUsers with the same request_id, and
by the follow-up task, which finishes merges that no client came back for.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging

import grpc
from chat4all.conversations.v1 import request_response_pb2 as conversation_requests
from chat4all.conversations.v1 import service_pb2_grpc as conversation_grpc

from services.runtime.errors import Unavailable
from services.users.merges import Merge, MergeStore

log = logging.getLogger("chat4all.users.memberships")

# Longer than ConversationService's usual 5 s: one transaction moves every membership of the user.
APPLY_TIMEOUT_SECONDS = 30.0
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
}


class MembershipHandover:
    def __init__(self, merges: MergeStore, channel: grpc.aio.Channel) -> None:
        self.merges = merges
        self._conversations = conversation_grpc.ConversationServiceStub(channel)

    async def complete(self, merge: Merge) -> None:
        """Move the merged user's memberships to the survivor; UNAVAILABLE if it cannot be done now."""
        if merge.memberships_moved:
            return
        request = conversation_requests.ApplyUserMergeRequest(
            request_id=str(merge.request_id),
            source_user_id=str(merge.source_user_id),
            target_user_id=str(merge.target_user_id),
        )
        try:
            await self._conversations.ApplyUserMerge(request, timeout=APPLY_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as error:
            if error.code() in _TRANSIENT:
                raise Unavailable(
                    f"user {merge.source_user_id} is merged into {merge.target_user_id}, but the conversation service"
                    f" could not move the memberships yet ({error.code().name}); retry with the same request_id"
                ) from None
            raise
        await self.merges.memberships_moved(merge.source_user_id)

    async def complete_unfinished(self, older_than: datetime.timedelta) -> int:
        """One pass of the follow-up: finish the merges left unfinished; how many it finished."""
        finished = 0
        for merge in await self.merges.unfinished(older_than):
            try:
                await self.complete(merge)
                finished += 1
            except Unavailable as error:  # the conversation service is away: the next pass tries again
                log.warning("merge follow-up paused", extra={"source_user_id": str(merge.source_user_id), "error": error.message})
                break
            except Exception:  # noqa: BLE001 - one broken merge must not hold up the others
                log.exception("moving a merged user's memberships failed", extra={"source_user_id": str(merge.source_user_id)})
        return finished

    async def follow_up_forever(self, every_seconds: float, stopping: asyncio.Event) -> None:
        """Until `stopping` is set (checked as well as cancelling the task: a cancellation that
        lands while a query is being cancelled can be swallowed)."""
        age = datetime.timedelta(seconds=every_seconds)
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), every_seconds)
            if stopping.is_set():
                return
            try:
                await self.complete_unfinished(age)
            except Exception:  # noqa: BLE001 - e.g. PostgreSQL briefly away; the task must live on
                log.exception("merge follow-up pass failed")
