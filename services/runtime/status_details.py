"""google.rpc.Status details on the wire: RetryInfo tells a caller when to try again.

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


def retry_trailers(code: grpc.StatusCode, message: str, retry_after_seconds: float | None) -> tuple[tuple[str, bytes], ...]:
    if retry_after_seconds is None:
        return ()
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(retry_after_seconds * 1e9))
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return ((DETAILS_TRAILER, status.SerializeToString()),)


def answered_by(error: grpc.aio.AioRpcError) -> str | None:
    return next((value for key, value in error.trailing_metadata() or () if key == ANSWERED_BY_TRAILER), None)


def retry_after_seconds(error: grpc.aio.AioRpcError) -> float | None:
    for key, value in error.trailing_metadata() or ():
        if key != DETAILS_TRAILER:
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                return info.retry_delay.ToNanoseconds() / 1e9
    return None
