"""Helpers for GetCapabilities answers."""

from __future__ import annotations

from chat4all.connector.v1 import message_pb2
from google.protobuf import duration_pb2


def rate_limit(scope: int, per_second: float, platform_error_code: str) -> message_pb2.RateLimit:
    """A rate as whole messages per period: 80/s -> 80 per 1 s, 1/6 per second -> 1 per 6 s."""
    if per_second >= 1 and float(per_second).is_integer():
        count, period = int(per_second), 1.0
    else:
        count, period = 1, 1 / per_second
    limit = message_pb2.RateLimit(scope=scope, max_messages=count, platform_error_code=platform_error_code)
    limit.period.CopyFrom(duration_pb2.Duration(seconds=int(period), nanos=int(round(period % 1 * 1e9))))
    return limit
