"""Graph API errors, in the shape every Meta endpoint answers them:

    {"error": {"message": "(#100) ...", "type": "OAuthException", "code": 100,
               "error_subcode": 33, "error_data": {"details": "..."}, "fbtrace_id": "A1b2..."}}

`error_subcode` and `error_data` appear only when the platform sends them for
that error (Meta leaves them out otherwise).
"""

from __future__ import annotations

from typing import Any


class GraphError(Exception):
    def __init__(
        self,
        http_status: int,
        code: int,
        message: str,
        *,
        type_: str = "OAuthException",
        subcode: int | None = None,
        details: str | None = None,
        error_data: dict[str, Any] | None = None,
        retry_after: int | None = None,
        is_transient: bool | None = None,
    ):
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.type = type_
        self.subcode = subcode
        self.error_data = dict(error_data or {})
        if details is not None:
            self.error_data["details"] = details
        self.retry_after = retry_after
        self.is_transient = is_transient

    def body(self, fbtrace_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.error_data:
            error["error_data"] = self.error_data
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.is_transient is not None:
            error["is_transient"] = self.is_transient
        error["fbtrace_id"] = fbtrace_id
        return {"error": error}

    def summary(self) -> str:
        details = self.error_data.get("details")
        return f"{self.message} ({details})" if details else self.message


def invalid_token() -> GraphError:
    return GraphError(401, 190, "Invalid OAuth access token - Cannot parse access token")


def invalid_parameter(text: str, *, error_data: dict[str, Any] | None = None) -> GraphError:
    """Code 100; `text` names the parameter, e.g. "Param text['body'] must be ..."."""
    return GraphError(400, 100, f"(#100) {text}", details=text, error_data=error_data)


def unknown_object(object_id: str, verb: str = "get") -> GraphError:
    return GraphError(
        400, 100,
        f"Unsupported {verb} request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation. Please read the Graph API documentation "
        "at https://developers.facebook.com/docs/graph-api",
        type_="GraphMethodException", subcode=33,
    )


def unknown_path(path: str) -> GraphError:
    return GraphError(400, 2500, f"Unknown path components: {path}")


def server_error(status: int) -> GraphError:
    """5xx bodies: code 1 (unknown error) for 500, code 2 (service unavailable) otherwise; transient."""
    if status == 500:
        return GraphError(500, 1, "An unknown error has occurred.", is_transient=True)
    return GraphError(status, 2, "Service temporarily unavailable", is_transient=True)
