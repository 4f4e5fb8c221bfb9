"""Async PostgreSQL pool and versioned SQL migrations.

Migrations are files `NNNN_description.sql` in a service's migrations folder.
Each applies once, in its own transaction, and is recorded with a checksum in
`schema_migrations` under the service's component name. A session-level
advisory lock serialises every service and replica starting at the same time; an applied file
that was edited afterwards stops the start-up instead of drifting silently.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("chat4all.postgres")

_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = zlib.crc32(b"chat4all-migrations")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        migrations.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a version number")
    return migrations


async def open_pool(dsn: str, min_size: int = 1, max_size: int = 10, name: str = "chat4all") -> AsyncConnectionPool:
    pool = AsyncConnectionPool(dsn, min_size=min_size, max_size=max_size, name=name, open=False)
    await pool.open(wait=True, timeout=30)
    return pool


async def migrate(pool: AsyncConnectionPool, component: str, directory: Path) -> list[int]:
    """Apply the pending migrations of `component`; returns the versions applied now."""
    migrations = load_migrations(directory)
    applied_now: list[int] = []
    async with pool.connection() as conn:
        # Autocommit outside the per-migration transactions, so a failed migration rolls back
        # alone and the lock is still released on a healthy connection.
        await conn.set_autocommit(True)
        try:
            # One lock for every component: services sharing a database start together, and
            # even CREATE TABLE IF NOT EXISTS races with itself in PostgreSQL.
            await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                await _apply(conn, component, migrations, applied_now)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
        finally:
            await conn.set_autocommit(False)
    return applied_now


async def _apply(conn, component: str, migrations: list[Migration], applied_now: list[int]) -> None:
    await conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            component  text        NOT NULL,
            version    integer     NOT NULL,
            name       text        NOT NULL,
            checksum   text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (component, version)
        )
        """
    )
    rows = await (
        await conn.execute("SELECT version, checksum FROM schema_migrations WHERE component = %s", (component,))
    ).fetchall()
    recorded = dict(rows)
    for migration in migrations:
        if migration.version in recorded:
            if recorded[migration.version] != migration.checksum:
                raise MigrationError(
                    f"{component} migration {migration.version:04d}_{migration.name} changed after it "
                    "was applied; add a new migration instead of editing an applied one"
                )
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (component, version, name, checksum) VALUES (%s, %s, %s, %s)",
                (component, migration.version, migration.name, migration.checksum),
            )
        applied_now.append(migration.version)
        log.info("migration applied", extra={"component": component, "version": migration.version})
