"""clamd, ClamAV's scanner daemon, for the files service's malware scan: an app
(`python -m scripts.platform.clamav` writes its config and becomes `clamd -c var/run/clamd.conf`)
listening on [apps.clamd] port, with its signatures in var/data/clamav and ready once it
answers PING with PONG."""

from __future__ import annotations

import socket

from scripts.platform.clamav import SYSTEM_DATABASES
from scripts.platform.parts.apps import App
from scripts.platform.probes import Health


def ping(host: str, port: int, timeout: float = 2.0) -> Health:
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"zPING\0")
            answer = conn.recv(16)
    except OSError as exc:
        return Health(False, f"{type(exc).__name__}: {exc}")
    return Health(answer == b"PONG\0", answer.rstrip(b"\0").decode(errors="replace") or "no answer")


class Clamd(App):
    MODULE = "scripts.platform.clamav"  # an [apps.*] table running this module is a Clamd

    @property
    def port(self) -> int:
        return int(self.settings["port"])

    def environment(self) -> dict[str, str]:
        return {
            **super().environment(),
            "C4A_CLAMD_HOST": self.cfg.host,
            "C4A_CLAMD_PORT": str(self.port),
            "C4A_CLAMD_CONFIG": str(self.cfg.run_dir / "clamd.conf"),
            "C4A_CLAMD_DATABASE_DIR": str(self.cfg.data_dir / "clamav"),
            "C4A_CLAMD_TEMPORARY_DIR": str(self.cfg.data_dir / "clamav-tmp"),
            "C4A_CLAMD_SYSTEM_DATABASES": str(self.settings.get("system_databases", SYSTEM_DATABASES)),
        }

    def probe(self) -> Health:
        return ping(self.cfg.host, self.port)

    def ports(self) -> str:
        return f"tcp {self.port}"

    def wait_ready(self, timeout: float | None = None) -> Health:
        # Loading freshclam's full databases (when there are any) outlasts the usual wait.
        return super().wait_ready(timeout if timeout is not None else float(self.settings.get("ready_timeout_s", self.cfg.ready_timeout)))
