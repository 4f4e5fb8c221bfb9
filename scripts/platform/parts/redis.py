"""Redis: the machine's server when one answers, else our own redis-server with its data in var/."""

from __future__ import annotations

from scripts.platform import binaries, probes
from scripts.platform.parts.shared import SharedOrOwnPart
from scripts.platform.probes import Health
from scripts.platform.processes import ProcessSpec


class Redis(SharedOrOwnPart):
    name = "redis"

    def url(self, port: int | None = None) -> str:
        return f"redis://{self.cfg.host}:{port or self.port()}/0"

    def probe_port(self, port: int) -> Health:
        return probes.redis(self.url(port))

    def start_own(self) -> str:
        data = self.cfg.data_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            str(binaries.redis_server()),
            "--bind", self.cfg.host,
            "--port", str(self.own_port()),
            "--dir", str(data),
            "--appendonly", "yes",  # every write reaches disk: data survives stop and start
            "--daemonize", "no",    # the supervisor keeps it; logs go to var/log/redis.log
            "--logfile", "",
        ]
        spec = ProcessSpec(self.name, argv, cwd=data,
                           stop_timeout=self.cfg.stop_timeout(self.cfg.section("redis")))
        return self.ensure_process(spec)
