"""The whole platform: its parts in start order, brought up stage by stage and stopped in reverse."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from scripts.platform.config import Config
from scripts.platform.parts.apps import App
from scripts.platform.parts.base import Context, Part, PartError, PartStatus
from scripts.platform.parts.clamd import Clamd
from scripts.platform.parts.envoy import Envoy
from scripts.platform.parts.kafka import Kafka
from scripts.platform.parts.postgres import Postgres
from scripts.platform.parts.redis import Redis
from scripts.platform.parts.seaweedfs import SeaweedFS

Report = Callable[[str], None]
# Apps that need more than App gives (their own environment or probe), by module.
_APP_PARTS: dict[str, type[App]] = {Clamd.MODULE: Clamd}
_LOCK_WAIT_S = 180  # a concurrent `up` or `stop` on the same var/ may take this long


class Stack:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.ctx = Context(cfg)
        ctx = self.ctx
        # Each stage waits for the one before; the apps start together and are awaited together.
        self.stages: list[list[Part]] = [
            [Postgres(ctx)], [Redis(ctx)], [SeaweedFS(ctx)], [Kafka(ctx)], [Envoy(ctx)],
            [_APP_PARTS.get(settings.get("module", ""), App)(ctx, name, settings) for name, settings in cfg.apps.items()],
        ]

    @property
    def parts(self) -> list[Part]:
        return [part for stage in self.stages for part in stage]

    def select(self, names: list[str] | None) -> list[Part]:
        if not names:
            return self.parts
        known = {part.name: part for part in self.parts}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise PartError(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return [known[name] for name in names]

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One `up` or `stop` at a time per var/ directory."""
        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.cfg.run_dir / "platform.lock", "w") as lock:
            deadline = time.monotonic() + _LOCK_WAIT_S
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise PartError(f"another up/stop holds {lock.name}") from None
                    time.sleep(0.2)
            yield

    def up(self, report: Report) -> None:
        with self._exclusive():
            for stage in self.stages:
                for part in stage:
                    report(f"{part.name}: {part.start()}")
                errors = []
                for part in stage:
                    try:
                        part.wait_ready()
                        part.after_ready()
                    except PartError as exc:
                        errors.append(str(exc))
                if errors:
                    raise PartError("\n".join(errors))

    def status(self) -> list[PartStatus]:
        with ThreadPoolExecutor(max_workers=8) as pool:  # probes wait on the network: ask at once
            return list(pool.map(lambda part: part.status(), self.parts))

    def stop(self, report: Report, names: list[str] | None = None) -> None:
        chosen = {id(part) for part in self.select(names)}
        with self._exclusive():
            for stage in reversed(self.stages):
                parts = [part for part in stage if id(part) in chosen]
                with ThreadPoolExecutor(max_workers=max(1, len(parts))) as pool:  # a stage stops at once
                    for part, outcome in zip(parts, pool.map(lambda part: part.stop(), parts)):
                        report(f"{part.name}: {outcome}")
