"""Chat4All's own processes (services, later connectors): `python -m <module>`, configured only
through C4A_* environment variables taken from local.toml."""

from __future__ import annotations

import os
import string
import sys
from pathlib import Path
from typing import Any

from scripts.platform import probes
from scripts.platform.config import ConfigError
from scripts.platform.parts.base import Context, Part, PartStatus
from scripts.platform.probes import Health
from scripts.platform.processes import ProcessSpec


class App(Part):
    def __init__(self, ctx: Context, name: str, settings: dict[str, Any]) -> None:
        super().__init__(ctx)
        self.name = name
        self.settings = settings

    @property
    def module(self) -> str:
        return self.settings["module"]

    @property
    def grpc_port(self) -> int | None:
        port = self.settings.get("grpc_port")
        return int(port) if port else None

    def exists(self) -> bool:
        """Whether the module is written yet (checked on disk: importing it could have effects)."""
        roots = [self.cfg.root, self.cfg.root / "gen" / "python"]
        roots += [Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        for root in roots:
            base = root / Path(*self.module.split("."))
            if (base / "__main__.py").exists() or base.with_suffix(".py").exists():
                return True
        return False

    def probe(self) -> Health:
        if self.grpc_port:
            return probes.grpc_health(f"{self.cfg.host}:{self.grpc_port}")
        if self.settings.get("http_port") and self.settings.get("health_path"):
            # HTTP-only processes, such as the platform emulators.
            return probes.http_ok(f"{self.ctx.url(int(self.settings['http_port']))}{self.settings['health_path']}")
        if self.settings.get("metrics_port"):
            return probes.http_ok(f"{self.ctx.url(int(self.settings['metrics_port']))}/metrics")
        alive = self.sup.running(self.name) is not None
        return Health(alive, "alive" if alive else "not running")

    def ports(self) -> str:
        parts = [f"grpc {self.grpc_port}"] if self.grpc_port else []
        if self.settings.get("http_port"):
            parts.append(f"http {self.settings['http_port']}")
        if self.settings.get("metrics_port"):
            parts.append(f"metrics {self.settings['metrics_port']}")
        return ", ".join(parts)

    def status(self) -> PartStatus:
        if not self.exists() and self.sup.running(self.name) is None:
            return PartStatus(self.name, "skipped", None, self.ports(), Health(True, f"{self.module} not written yet"))
        return super().status()

    def environment(self) -> dict[str, str]:
        from scripts.platform.parts.kafka import Kafka
        from scripts.platform.parts.postgres import Postgres
        from scripts.platform.parts.redis import Redis
        from scripts.platform.parts.seaweedfs import SeaweedFS

        s3 = self.cfg.section("seaweedfs")
        env = {
            "C4A_SERVICE_NAME": self.name,
            "C4A_GRPC_HOST": self.cfg.host,
            "C4A_GRPC_PORT": str(self.grpc_port or ""),
            "C4A_HTTP_PORT": str(self.settings.get("http_port", "")),
            "C4A_METRICS_PORT": str(self.settings.get("metrics_port", "")),
            "C4A_POSTGRES_DSN": Postgres(self.ctx).dsn(),
            "C4A_REDIS_URL": Redis(self.ctx).url(),
            "C4A_KAFKA_BOOTSTRAP": Kafka(self.ctx).bootstrap,
            "C4A_S3_ENDPOINT": SeaweedFS(self.ctx).endpoint,
            "C4A_S3_ACCESS_KEY": s3["access_key"],
            "C4A_S3_SECRET_KEY": s3["secret_key"],
            "C4A_S3_REGION": s3.get("region", "us-east-1"),
            # The generated code under gen/python is importable even before `pip install -e .`
            # picks it up; anything already on PYTHONPATH (a test's helpers) stays reachable.
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(
                p for p in (str(self.cfg.root), str(self.cfg.root / "gen" / "python"),
                            *os.environ.get("PYTHONPATH", "").split(os.pathsep)) if p
            )),
            "PYTHONUNBUFFERED": "1",  # log lines reach var/log as they are written
        }
        # Every app finds every other gRPC app by name, e.g. C4A_USERS_TARGET=127.0.0.1:18203,
        # so ports stay written once, in their own table.
        for name, other in self.cfg.apps.items():
            if other.get("grpc_port"):
                env[f"C4A_{name.upper()}_TARGET"] = f"{self.cfg.host}:{other['grpc_port']}"
        # `env` values may name any app's ports as ${<app>_<key>} (and ${host}), so a port is
        # written once, in its app's table, and tests can move every port at once.
        variables = {"host": self.cfg.host}
        for name, other in self.cfg.apps.items():
            variables.update({f"{name}_{key}": str(value) for key, value in other.items() if key.endswith("port")})
        for key, value in self.settings.get("env", {}).items():
            try:
                env[key] = string.Template(str(value)).substitute(variables)
            except KeyError as missing:
                raise ConfigError(f"[apps.{self.name}] env {key}: no port named {missing} in local.toml") from None
        return env

    def start(self) -> str:
        if not self.exists():
            return f"skipped: {self.module} not written yet"
        spec = ProcessSpec(self.name, [sys.executable, "-m", self.module], cwd=self.cfg.root,
                           env=self.environment(), stop_timeout=self.cfg.stop_timeout(self.settings))
        return self.ensure_process(spec)

    def wait_ready(self, timeout: float | None = None) -> Health:
        if not self.exists() and self.sup.record(self.name) is None:
            return Health(True, "skipped")
        return super().wait_ready(timeout)
