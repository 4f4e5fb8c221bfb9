"""Reads local.toml, the one file with every port and setting of the local platform."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.platform.binaries import REPO_ROOT

DEFAULT_CONFIG = Path(__file__).with_name("local.toml")
CONFIG_ENV = "C4A_PLATFORM_CONFIG"
VAR_ENV = "C4A_PLATFORM_VAR"


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Config:
    path: Path
    var: Path  # pid files, logs and data of this platform instance
    raw: dict[str, Any]
    root: Path = REPO_ROOT

    def section(self, name: str) -> dict[str, Any]:
        try:
            return self.raw[name]
        except KeyError:
            raise ConfigError(f"{self.path}: section [{name}] is missing") from None

    def get(self, section: str, key: str, default: Any = ...) -> Any:
        value = self.section(section).get(key, default)
        if value is ...:
            raise ConfigError(f"{self.path}: [{section}] needs {key!r}")
        return value

    @property
    def host(self) -> str:
        return self.get("platform", "host", "127.0.0.1")

    @property
    def ready_timeout(self) -> float:
        return float(self.get("platform", "ready_timeout_s", 60))

    def stop_timeout(self, section: dict[str, Any]) -> float:
        return float(section.get("stop_timeout_s", self.get("platform", "stop_timeout_s", 20)))

    @property
    def apps(self) -> dict[str, dict[str, Any]]:
        return self.raw.get("apps", {})

    @property
    def run_dir(self) -> Path:
        return self.var / "run"

    @property
    def log_dir(self) -> Path:
        return self.var / "log"

    @property
    def data_dir(self) -> Path:
        return self.var / "data"

    def repo_path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.root / path


def load(config_path: str | os.PathLike[str] | None = None, var: str | os.PathLike[str] | None = None) -> Config:
    """CLI flags win over the environment, which wins over the defaults."""
    path = Path(config_path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).resolve()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    var_dir = Path(var or os.environ.get(VAR_ENV) or REPO_ROOT / "var").resolve()
    return Config(path=path, var=var_dir, raw=raw)
