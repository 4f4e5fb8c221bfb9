"""Instagram Messaging errors in the Graph shape.

The window (code 10 / subcode 2018278) and an unavailable user (551) answer
synchronously with HTTP 400; the rate limit answers HTTP 429 with code 613.
"""

from __future__ import annotations

from ..meta.errors import GraphError


def invalid_parameter(text: str) -> GraphError:
    return GraphError(400, 100, f"(#100) {text}")


def user_unavailable() -> GraphError:
    return GraphError(400, 551, "(#551) This person isn't available right now.", subcode=1545041)


def outside_window() -> GraphError:
    return GraphError(400, 10, "(#10) This message is sent outside of allowed window.", subcode=2018278)


def rate_limited(retry_after: int | None = None) -> GraphError:
    return GraphError(429, 613, "(#613) Calls to this api have exceeded the rate limit.", retry_after=retry_after)
