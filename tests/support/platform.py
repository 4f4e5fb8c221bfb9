"""The local platform for tests: the real `scripts/platformctl` on free ports, in a
temporary var/ directory and its own database, so it never touches a developer's
running platform, and always stopped afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.platform import config as platform_config
from tests.support.ports import free_ports

ROOT = Path(__file__).resolve().parents[2]
CTL = ROOT / "scripts" / "platformctl"
CONNECTORS = ("telegram", "whatsapp", "instagram")


def toml_dumps(table: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """Enough TOML for local.toml: scalars, lists of scalars and nested tables."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(item) for item in v) + "]"
        raise TypeError(f"cannot write {v!r} as TOML")

    lines = [f"{json.dumps(k)} = {value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    out = ("[" + ".".join(json.dumps(p) for p in prefix) + "]\n" if prefix and lines else "") + "".join(
        line + "\n" for line in lines
    )
    for key, sub in table.items():
        if isinstance(sub, dict):
            out += "\n" + toml_dumps(sub, (*prefix, key))
    return out


def with_free_ports(raw: dict[str, Any]) -> dict[str, Any]:
    """Every port we start something on gets a free one; `shared_port`s stay (machine servers)."""
    slots: list[tuple[dict[str, Any], str]] = []

    def walk(table: dict[str, Any]) -> None:
        for key, item in table.items():
            if isinstance(item, dict):
                walk(item)
            elif key.endswith("port") and key != "shared_port" and isinstance(item, int):
                slots.append((table, key))

    walk(raw)
    for (table, key), port in zip(slots, free_ports(len(slots))):
        table[key] = port
    return raw


@dataclass
class Platform:
    config_path: Path
    var: Path
    raw: dict[str, Any]
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(CTL), *args], env=self.env, cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def check(self, *args: str, timeout: float = 180) -> str:
        done = self.run(*args, timeout=timeout)
        assert done.returncode == 0, f"platformctl {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def pids(self) -> dict[str, int]:
        return {path.stem: json.loads(path.read_text())["pid"] for path in (self.var / "run").glob("*.pid")}

    def state(self, name: str) -> dict[str, Any]:
        path = self.var / "run" / f"{name}.state.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @property
    def host(self) -> str:
        return self.raw["platform"]["host"]

    def postgres_dsn(self, database: str) -> str:
        port = self.state("postgres").get("port", self.raw["postgres"]["port"])
        return f"postgresql://postgres@{self.host}:{port}/{database}"

    def s3(self):  # noqa: ANN201
        import boto3

        section = self.raw["seaweedfs"]
        return boto3.client("s3", endpoint_url=f"http://{self.host}:{section['s3_port']}",
                            aws_access_key_id=section["access_key"], aws_secret_access_key=section["secret_key"],
                            region_name=section["region"])

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.raw['kafka']['port']}"


def all_connectors_fast(raw: dict[str, Any]) -> None:
    """Every connector, a broker in memory (for tests that never restart it) and quick retries."""
    raw["kafka"]["storage"] = "memory"
    raw["apps"]["router"]["env"]["C4A_BACKOFF_BASE_SECONDS"] = "0.2"
    for app in raw["apps"].values():
        # Several platforms may share the machine's PostgreSQL (100 connections) at once.
        app.setdefault("env", {})["C4A_POSTGRES_POOL_MAX"] = "4"


def alive(pid: int) -> bool:
    """A zombie counts as gone: its parent (init here) may simply not have reaped it yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@contextlib.contextmanager
def running_platform(customize: Callable[[dict[str, Any]], None] = lambda raw: None) -> Iterator[Platform]:
    """A platform config with every port free and its own database; `customize` edits it first."""
    raw = with_free_ports(tomllib.loads(platform_config.DEFAULT_CONFIG.read_text()))
    database = f"c4a_platform_test_{uuid.uuid4().hex[:10]}"
    raw["postgres"]["database"] = database
    raw["envoy"]["access_log"] = False
    # The machine's Redis is shared: rate limits, send ledgers and inbound dedup of this run are its own.
    for name in CONNECTORS:
        if name in raw["apps"]:
            raw["apps"][name].setdefault("env", {})["C4A_CONNECTOR_REDIS_PREFIX"] = f"c4a-test:{database}:{name}"
    customize(raw)
    # Not under pytest's 0700 tmp folders: should the platform initdb its own cluster, the
    # postgres user must be able to reach var/data/postgres.
    work = Path(tempfile.mkdtemp(prefix="c4a-platform-"))
    work.chmod(0o755)
    config_path = work / "local.toml"
    config_path.write_text(toml_dumps(raw))
    env = {**os.environ, platform_config.CONFIG_ENV: str(config_path), platform_config.VAR_ENV: str(work / "var")}
    handle = Platform(config_path, work / "var", raw, env)
    try:
        yield handle
    finally:
        try:
            handle.run("stop", timeout=180)
        finally:
            for pid in handle.pids().values():  # a safety net: nothing of ours may outlive the test
                if alive(pid):
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
            drop_from_shared_server(raw, database)
            shutil.rmtree(work, ignore_errors=True)


def drop_from_shared_server(raw: dict[str, Any], database: str) -> None:
    """Our database, if `up` made it on the machine's server (the name is ours alone)."""
    import psycopg
    from psycopg import sql

    dsn = f"postgresql://postgres@{raw['platform']['host']}:{raw['postgres']['shared_port']}/postgres"
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        return  # no shared server: the platform ran its own cluster, removed with var/
    with conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database)))
