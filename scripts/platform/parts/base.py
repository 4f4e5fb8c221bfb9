"""What every part of the platform has in common: start, wait until ready, report, stop."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from scripts.platform.config import Config
from scripts.platform.probes import Health, wait_until
from scripts.platform.processes import ProcessSpec, Supervisor


class PartError(Exception):
    """A part did not come up; the message names it and points at its log."""


@dataclass(frozen=True)
class PartStatus:
    name: str
    origin: str  # "ours", "shared" (the machine's own server), "skipped" or "down"
    pid: int | None
    ports: str
    health: Health

    @property
    def ok(self) -> bool:
        return self.origin == "skipped" or self.health.ok


class Context:
    """The config, the supervisor, and facts that one part learns and others need."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.sup = Supervisor(cfg.run_dir, cfg.log_dir)

    def state(self, name: str) -> dict[str, Any]:
        try:
            return json.loads((self.cfg.run_dir / f"{name}.state.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def save_state(self, name: str, state: dict[str, Any]) -> None:
        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        (self.cfg.run_dir / f"{name}.state.json").write_text(json.dumps(state))

    def url(self, port: int) -> str:
        return f"http://{self.cfg.host}:{port}"


def log_tail(path: Any, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as log:
            return "".join(deque(log, maxlen=lines))
    except FileNotFoundError:
        return "(no log yet)\n"


class Part:
    name: str = ""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.sup = ctx.sup

    # --- what each part provides ---------------------------------------------------------
    def start(self) -> str:
        """Start unless already running; returns what it did. Must not block for long."""
        raise NotImplementedError

    def probe(self) -> Health:
        raise NotImplementedError

    def after_ready(self) -> None:
        """One-time setup once the part answers (databases, buckets, topics)."""

    def ports(self) -> str:
        raise NotImplementedError

    def status(self) -> PartStatus:
        record = self.sup.running(self.name)
        if record is None:
            return PartStatus(self.name, "down", None, self.ports(), Health(False, "not running"))
        return PartStatus(self.name, "ours", record.pid, self.ports(), self.probe())

    def stop(self) -> str:
        return self.sup.stop(self.name)

    # --- shared machinery ----------------------------------------------------------------
    def ensure_process(self, spec: ProcessSpec) -> str:
        """Start `spec` unless it already runs with the same command line and settings."""
        record = self.sup.running(spec.name)
        if record is not None:
            if record.fingerprint == spec.fingerprint():
                return "already running"
            self.sup.stop(spec.name)
            self.sup.start(spec)
            return "restarted (settings changed)"
        self.sup.start(spec)
        return "started"

    def wait_ready(self, timeout: float | None = None) -> Health:
        timeout = self.cfg.ready_timeout if timeout is None else timeout
        alive: Callable[[], bool] = lambda: self.sup.running(self.name) is not None  # noqa: E731
        health = wait_until(self.probe, timeout, alive=alive if self.sup.record(self.name) else None)
        if not health.ok:
            dead = health.detail.startswith("exited before")
            raise self.failure(health.detail if dead else f"not ready after {timeout:.0f} s: {health.detail}")
        return health

    def failure(self, what: str) -> PartError:
        log = self.sup.log_path(self.name)
        code = self.sup.exit_code(self.name)
        exited = f" (exited with code {code})" if code is not None else ""
        return PartError(
            f"{self.name}{exited}: {what}\n  log: {log}\n  last lines:\n"
            + "".join(f"    {line}" for line in log_tail(log).splitlines(keepends=True))
        )
