"""WhatsApp Cloud API errors: synchronous (Graph error bodies, with
`error_data.messaging_product`) and asynchronous (`errors` of a failed status).

Rate limits answer HTTP 429 (the code in the body is what tells them apart:
130429 throughput, 131056 pair limit); Meta documents the codes, not one HTTP
status, and 429 makes a generic HTTP client back off too.
"""

from __future__ import annotations

from typing import Any

from ..meta.errors import GraphError

_DATA = {"messaging_product": "whatsapp"}
ERROR_DOCS = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


def invalid_parameter(text: str) -> GraphError:
    return GraphError(400, 100, f"(#100) {text}", details=text, error_data=_DATA)


def missing_parameter(details: str) -> GraphError:
    return GraphError(400, 131008, "(#131008) Required parameter is missing", details=details, error_data=_DATA)


def invalid_value(details: str) -> GraphError:
    return GraphError(400, 131009, "(#131009) Parameter value is not valid", details=details, error_data=_DATA)


def throughput_limited(retry_after: int | None = None) -> GraphError:
    return GraphError(429, 130429, "(#130429) Rate limit hit", subcode=2494055, error_data=_DATA,
                      details="Cloud API message throughput has been reached.", retry_after=retry_after)


def pair_limited() -> GraphError:
    return GraphError(
        429, 131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit", error_data=_DATA,
        details="Message failed to send because there were too many messages sent from this phone number "
                "to the same phone number in a short period of time.")


def status_error(code: int, title: str, details: str) -> dict[str, Any]:
    """An entry of a failed status's `errors`."""
    return {"code": code, "title": title, "message": title, "error_data": {"details": details},
            "href": ERROR_DOCS}


def reengagement_error() -> dict[str, Any]:
    return status_error(131047, "Re-engagement message",
                        "Message failed to send because more than 24 hours have passed since the customer "
                        "last replied to this number.")


def media_error(details: str) -> dict[str, Any]:
    return status_error(131053, "Media upload error", details)


def generic_failure() -> dict[str, Any]:
    return status_error(131000, "Something went wrong", "Message failed to send due to an unknown error.")
