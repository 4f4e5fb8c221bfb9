"""google.rpc.Status details on the wire: RetryInfo tells a caller when to try again,
ErrorInfo names the reason of an error a caller must tell apart from others of its code.

Servers attach it in the `grpc-status-details-bin` trailer (what grpcio-status
and every gRPC language read); callers read the retry time back from an error.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

DETAILS_TRAILER = "grpc-status-details-bin"
# Set on every error a Chat4All server itself returns. An error without it never reached a
# server (connection refused, reset, proxy failure): the callee is down, not the request bad.
ANSWERED_BY_TRAILER = "chat4all-answered-by"


# ErrorInfo.domain of the reasons Chat4All servers give.
ERROR_DOMAIN = "chat4all.dev"
# A connector refused an attachment above its platform's size limit: final for that recipient.
MEDIA_TOO_LARGE = "MEDIA_TOO_LARGE"


def status_trailers(
    code: grpc.StatusCode, message: str, retry_after_seconds: float | None, reason: str | None = None
) -> tuple[tuple[str, bytes], ...]:
    details = []
    if retry_after_seconds is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after_seconds * 1e9))
        details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    if reason:
        details.append(_packed(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)))
    if not details:
        return ()
    status = status_pb2.Status(code=code.value[0], message=message, details=details)
    return ((DETAILS_TRAILER, status.SerializeToString()),)


def _packed(detail) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(detail)
    return packed


def answered_by(error: grpc.aio.AioRpcError) -> str | None:
    return next((value for key, value in error.trailing_metadata() or () if key == ANSWERED_BY_TRAILER), None)


def _details(error: grpc.aio.AioRpcError):
    for key, value in error.trailing_metadata() or ():
        if key == DETAILS_TRAILER:
            yield from status_pb2.Status.FromString(value).details


def retry_after_seconds(error: grpc.aio.AioRpcError) -> float | None:
    for detail in _details(error):
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToNanoseconds() / 1e9
    return None


def error_reason(error: grpc.aio.AioRpcError) -> str | None:
    """The ErrorInfo reason a Chat4All server attached, if any."""
    for detail in _details(error):
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.domain == ERROR_DOMAIN:
            return info.reason
    return None
