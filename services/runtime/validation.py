"""Request field checks shared by every service, with messages that name the field."""

from __future__ import annotations

import uuid

from services.runtime.errors import InvalidArgument


def require_uuid(value: str, field: str, *, v4: bool = False) -> str:
    """A canonical UUID string (what we store); UUIDv4 where AIP-155 asks for it."""
    if not value:
        raise InvalidArgument(f"{field} is required")
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{field} must be a UUID, got {value[:64]!r}") from None
    if v4 and parsed.version != 4:
        raise InvalidArgument(f"{field} must be a UUIDv4, got version {parsed.version}")
    return str(parsed)


def parse_uuid(value: str, field: str, *, v4: bool = False) -> uuid.UUID:
    return uuid.UUID(require_uuid(value, field, v4=v4))


def parse_request_id(value: str) -> uuid.UUID:
    """An AIP-155 request_id: required, a UUIDv4."""
    return parse_uuid(value, "request_id", v4=True)


def page_size(requested: int, default: int = 50, maximum: int = 500) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative")
    return min(requested or default, maximum)
