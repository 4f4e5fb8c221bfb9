"""The access token of a Graph request: `Authorization: Bearer <token>`, or the
`access_token` query parameter, which the Graph API accepts too."""

from __future__ import annotations

from aiohttp import web

REDACTED = "[redacted]"


def access_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    token = request.query.get("access_token")
    return token or None


def recorded_headers(request: web.Request) -> dict[str, str]:
    """The request's headers with the token value hidden (the scheme stays visible)."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        if name.lower() == "authorization":
            scheme = value.partition(" ")[0]
            value = f"{scheme} {REDACTED}" if scheme else REDACTED
        headers[name] = value
    return headers
