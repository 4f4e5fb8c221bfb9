"""What a channel implements to become a connector: one small class per platform.

The SDK's MessageConnector servicer (servicer.py) does everything that is the
same on every platform: idempotent sends through the send ledger, shared rate
limits, the circuit breaker, cancellation-safe platform calls, capabilities
and health. A platform says only how to turn a request into its own call,
what the call counts against, and how to make it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from chat4all.connector.v1 import request_response_pb2

from connectors.sdk.http import PlatformHttp
from connectors.sdk.rate_limits import Bucket
from chat4all.messaging.v1 import message_pb2 as messaging_pb2
from services.runtime.errors import FailedPrecondition, ResourceExhausted
from services.runtime.status_details import MEDIA_TOO_LARGE


@dataclasses.dataclass
class Outgoing:
    """A checked request, ready for the platform."""

    target: str  # the recipient's address on the platform (part of the send record's key)
    buckets: list[Bucket]  # the rate limits this send counts against, the account's first
    # The platform messages it becomes, in order (a caption-less text and a file may be two).
    # A send that fails after some parts went out resumes after them on the next attempt.
    parts: list[Any]
    # Each part counts against the buckets as one message (the platform limits messages, not
    # requests): every part after the first takes its own slot before it goes, and one the
    # limits refuse ends the attempt with their wait; the retry resumes at that part.
    each_part_counts: bool = False


@dataclasses.dataclass(frozen=True)
class SentPart:
    platform_message_id: str
    send_time: int  # unix seconds, the platform's own time when it states one


class PlatformThrottled(ResourceExhausted):
    """The platform itself refused for rate (429, 130429, 613): wait `retry_after_seconds`.

    `scope` names the bucket that was over (an Outgoing bucket's limit scope); every
    replica then holds that bucket for the wait, not only the one that was told."""

    def __init__(self, message: str, *, retry_after_seconds: float, scope: str = "") -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds)
        self.scope = scope


class MediaTooLarge(FailedPrecondition):
    """An attachment above the platform's limit for its kind. Final for this recipient: the
    router marks the delivery FAILED with this reason and parks no dead letter (a replay
    cannot make the file smaller)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason=MEDIA_TOO_LARGE)


def check_media_size(attachment: messaging_pb2.Attachment, limit: int, platform: str, kind: str) -> None:
    """Refuse, before any platform call, a file the platform would refuse for its size."""
    if attachment.size_bytes > limit:
        raise MediaTooLarge(
            f"{attachment.filename or attachment.file_id} is {attachment.size_bytes} bytes;"
            f" {platform} accepts {kind} files up to {limit} bytes"
        )


class Platform(Protocol):
    name: str  # short lowercase name: metrics label, logs, Redis keys ("whatsapp")
    channel: int  # chat4all.channel.v1.Channel
    account_id: str  # the business account this process sends as (bot id, phone number id...)
    http: PlatformHttp

    async def prepare(self, request: request_response_pb2.SendMessageRequest) -> Outgoing:
        """Check the request (its account and recipient channel are checked already) and build
        the platform call; raise a ServiceError to refuse it (INVALID_ARGUMENT,
        FAILED_PRECONDITION...) before anything is sent."""
        ...

    async def send(self, outgoing: Outgoing, part: Any) -> SentPart:
        """Send one part; raise a ServiceError mapped from the platform's answer."""
        ...

    def capabilities(self) -> request_response_pb2.GetCapabilitiesResponse: ...

    async def probe(self, timeout_seconds: float) -> None:
        """A cheap authenticated call for CheckHealth (its outcome lands in http.last_check)."""
        ...
