"""Run-time settings (limits, status policy, webhook retries) that the control
API reads and changes: PUT replaces (fields not given take their defaults),
PATCH merges, DELETE restores the start value. Unknown fields are refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def _coerce(name: str, current: Any, value: Any) -> Any:
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be true or false")
        return value
    if isinstance(current, int) and current is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ValueError(f"{name} must be an integer")
        return int(value)
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number")
        return float(value)
    if isinstance(current, list):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f"{name} must be a list of strings")
        return list(value)
    return value


class Settings(Generic[T]):
    def __init__(self, default: T, validate: Callable[[T], None] | None = None,
                 on_change: Callable[[T], None] | None = None):
        self.default = default
        self._validate = validate
        self._on_change = on_change
        self.current: T = dataclasses.replace(default)  # type: ignore[type-var]
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.current)

    def update(self, body: Any, replace: bool) -> T:
        if not isinstance(body, dict):
            raise TypeError("the body must be a JSON object")
        fields = {field.name for field in dataclasses.fields(self.current)}  # type: ignore[arg-type]
        unknown = set(body) - fields
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        base = dataclasses.replace(self.default if replace else self.current)  # type: ignore[type-var]
        values = {name: _coerce(name, getattr(base, name), value) for name, value in body.items()}
        updated = dataclasses.replace(base, **values)  # type: ignore[type-var]
        if self._validate is not None:
            self._validate(updated)
        self.current = updated
        self._changed()
        return updated

    def reset(self) -> T:
        self.current = dataclasses.replace(self.default)  # type: ignore[type-var]
        self._changed()
        return self.current

    def snapshot(self) -> dict[str, Any]:
        return dataclasses.asdict(self.current)  # type: ignore[call-overload]
