"""PostgreSQL: the machine's server when one answers, else our own cluster in var/data/postgres."""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

from scripts.platform import binaries, probes
from scripts.platform.parts.base import PartStatus
from scripts.platform.parts.shared import SharedOrOwnPart
from scripts.platform.probes import Health

OS_USER = "postgres"  # initdb and postgres refuse to run as root


class Postgres(SharedOrOwnPart):
    name = "postgres"

    @property
    def database(self) -> str:
        return self.cfg.get("postgres", "database", "chat4all")

    def dsn(self, database: str | None = None, port: int | None = None) -> str:
        user = self.cfg.get("postgres", "user", "postgres")
        return f"postgresql://{user}@{self.cfg.host}:{port or self.port()}/{database or self.database}"

    def probe_port(self, port: int) -> Health:
        return probes.postgres(self.dsn("postgres", port))  # the maintenance database always exists

    def status(self) -> PartStatus:
        status = super().status()
        if status.health.ok:  # also tell whether the platform's own database is there
            db = probes.postgres(self.dsn())
            detail = f"{status.health}; database {self.database}: {'ok' if db.ok else db.detail}"
            status = PartStatus(status.name, status.origin, status.pid, status.ports, Health(db.ok, detail))
        return status

    def after_ready(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(self.database)))

    # --- our own cluster -----------------------------------------------------------------
    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            raise self.failure(f"running as root and there is no {OS_USER!r} user to own the cluster") from None
        if shutil.which("runuser"):
            return ["runuser", "-u", OS_USER, "--", *argv]
        return ["su", OS_USER, "-s", "/bin/sh", "-c", shlex.join(argv)]

    def _give_to_owner(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(OS_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, argv: list[str], timeout: float) -> None:
        log_path = self.sup.log_path(self.name)
        with open(log_path, "ab") as log:
            log.write(f"\n=== {shlex.join(argv)}\n".encode())
            log.flush()
            try:
                done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      cwd=self.cfg.data_dir, timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                raise self.failure(f"{argv[0]} did not finish within {timeout:.0f} s") from None
        if done.returncode != 0:
            raise self.failure(f"{shlex.join(argv)} failed with code {done.returncode}")

    def start_own(self) -> str:
        data = self.cfg.data_dir / "postgres"
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.cfg.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.sup.log_path(self.name)
        log.touch()
        self._give_to_owner(log)  # pg_ctl -l writes it as the cluster owner
        did = "started"
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            data.chmod(0o700)
            self._give_to_owner(data)
            user = self.cfg.get("postgres", "user", "postgres")
            initdb = str(binaries.postgres_tool("initdb"))
            self._run(self._as_owner([initdb, "-D", str(data), "-U", user, "--auth=trust",
                                      "--encoding=UTF8", "--locale=C"]), timeout=120)
            did = "initialised and started"
        # No unix socket: clients use TCP, and deep var/ paths would overflow the socket path limit.
        options = f"-p {self.own_port()} -c listen_addresses={self.cfg.host} -c unix_socket_directories=''"
        timeout = self.cfg.ready_timeout
        pg_ctl = str(binaries.postgres_tool("pg_ctl"))
        self._run(self._as_owner([pg_ctl, "-D", str(data), "-l", str(log), "-o", options,
                                  "-w", "-t", str(int(timeout)), "start"]), timeout=timeout + 10)
        pid = int((data / "postmaster.pid").read_text().split()[0])
        # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to leave.
        self.sup.adopt(self.name, pid, stop_signal=int(signal.SIGINT),
                       stop_timeout=self.cfg.stop_timeout(self.cfg.section("postgres")))
        return did
