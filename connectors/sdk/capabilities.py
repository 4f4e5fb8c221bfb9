"""Helpers for GetCapabilities answers."""

from __future__ import annotations

from chat4all.connector.v1 import message_pb2
from google.protobuf import duration_pb2


def rate_limit(
    scope: int, per_period: float, platform_error_code: str, period_seconds: float = 1.0
) -> message_pb2.RateLimit:
    """A rate as whole messages per period: 80/s -> 80 per 1 s, 1/6 per second -> 1 per 6 s,
    20 per minute (period_seconds=60) -> 20 per 60 s."""
    if per_period >= 1 and float(per_period).is_integer():
        count, period = int(per_period), float(period_seconds)
    else:
        count, period = 1, period_seconds / per_period
    limit = message_pb2.RateLimit(scope=scope, max_messages=count, platform_error_code=platform_error_code)
    limit.period.CopyFrom(duration_pb2.Duration(seconds=int(period), nanos=int(round(period % 1 * 1e9))))
    return limit
