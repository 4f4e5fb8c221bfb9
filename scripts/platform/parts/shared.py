"""Parts that the machine may already run (PostgreSQL, Redis): reuse that server, else run our own.

A shared server is only ever probed: never started, stopped or written to by `stop`.
Which one was chosen is kept in var/run/<name>.state.json so that later commands agree.
"""

from __future__ import annotations

from scripts.platform.parts.base import Part, PartStatus
from scripts.platform.probes import Health, tcp_open


class SharedOrOwnPart(Part):
    def own_port(self) -> int:
        return int(self.cfg.get(self.name, "port"))

    def shared_port(self) -> int:
        return int(self.cfg.get(self.name, "shared_port", 0))

    def probe_port(self, port: int) -> Health:
        raise NotImplementedError

    def start_own(self) -> str:
        raise NotImplementedError

    @property
    def shared(self) -> bool:
        return self.ctx.state(self.name).get("mode") == "shared"

    def port(self) -> int:
        """The chosen port; before `up` chose, the one it would choose."""
        state = self.ctx.state(self.name)
        if "port" in state:
            return int(state["port"])
        shared = self.shared_port()
        if shared and self.sup.running(self.name) is None and tcp_open(self.cfg.host, shared):
            return shared
        return self.own_port()

    def start(self) -> str:
        if self.sup.running(self.name) is not None:
            self.ctx.save_state(self.name, {"mode": "own", "port": self.own_port()})
            return "already running"
        shared = self.shared_port()
        if shared and tcp_open(self.cfg.host, shared):
            health = self.probe_port(shared)
            if not health.ok:
                raise self.failure(f"a server answers on shared port {shared} but fails the probe: {health}")
            self.ctx.save_state(self.name, {"mode": "shared", "port": shared})
            return f"using the machine's server on port {shared}"
        self.ctx.save_state(self.name, {"mode": "own", "port": self.own_port()})
        return self.start_own()

    def probe(self) -> Health:
        return self.probe_port(self.port())

    def ports(self) -> str:
        return f"{self.port()} (shared)" if self.shared else str(self.own_port())

    def status(self) -> PartStatus:
        if self.shared:
            return PartStatus(self.name, "shared", None, self.ports(), self.probe())
        return super().status()

    def stop(self) -> str:
        if self.shared:
            (self.cfg.run_dir / f"{self.name}.state.json").unlink(missing_ok=True)
            return "shared: left running"
        return super().stop()
