"""Typed configuration from environment variables.

A settings class is a frozen dataclass; field `grpc_port` is read from
`C4A_GRPC_PORT`. Services extend `RuntimeSettings` with their own fields.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

ENV_PREFIX = "C4A_"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


# kw_only: subclasses may add required fields after these defaults.
@dataclasses.dataclass(frozen=True, kw_only=True)
class RuntimeSettings:
    service_name: str = "chat4all"
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    metrics_host: str = "127.0.0.1"
    # 0 disables the Prometheus endpoint (tests that do not need it).
    metrics_port: int = 0
    log_level: str = "INFO"
    # Tracing is on in-process (trace ids in logs, context in Kafka headers);
    # this selects where finished spans go: none | console | otlp.
    otel_exporter: str = "none"
    otel_endpoint: str = "http://127.0.0.1:4317"
    # How long in-flight RPCs may run after SIGTERM before they are cancelled.
    shutdown_grace_seconds: float = 10.0
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/chat4all"
    postgres_pool_min: int = 1
    postgres_pool_max: int = 10
    redis_url: str = "redis://127.0.0.1:6379/0"
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Off for the local tansu broker, which cannot do idempotent producers;
    # on for production Apache Kafka.
    kafka_idempotence: bool = False
    kafka_linger_ms: int = 5
    # A consumer that stops heartbeating loses its partitions after this long. tansu
    # holds a group rejoin for a few session timeouts, so tests use short ones.
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    s3_endpoint: str = "http://127.0.0.1:8333"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"


S = TypeVar("S", bound=RuntimeSettings)


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def load_settings(cls: type[S] = RuntimeSettings, environ: Mapping[str, str] | None = None, **overrides: Any) -> S:
    """Build `cls` from the environment; explicit overrides win over the environment."""
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in overrides:
            values[field.name] = overrides[field.name]
            continue
        raw = environ.get(env_name(field.name))
        if raw is not None:
            values[field.name] = _parse(env_name(field.name), raw, hints[field.name])
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{env_name(field.name)} is required")
    return cls(**values)


def _parse(name: str, raw: str, kind: Any) -> Any:
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        if raw == "":
            return None
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{name} must be a boolean (true/false), got {raw!r}")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a{'n integer' if kind is int else ' number'}, got {raw!r}") from None
    if typing.get_origin(kind) is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw
