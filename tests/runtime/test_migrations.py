import psycopg
import pytest

from services.runtime.postgres import MigrationError, migrate, open_pool


@pytest.fixture
async def pool(postgres_dsn):
    pool = await open_pool(postgres_dsn, 1, 2)
    yield pool
    await pool.close()


def write(directory, name, sql):
    (directory / name).write_text(sql)


async def test_migration_applies_once_and_is_recorded(pool, postgres_dsn, tmp_path):
    write(tmp_path, "0001_create_notes.sql", "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);")
    write(tmp_path, "0002_add_author.sql", "ALTER TABLE notes ADD COLUMN author text; INSERT INTO notes (body) VALUES ('seed');")

    assert await migrate(pool, "notes", tmp_path) == [1, 2]
    assert await migrate(pool, "notes", tmp_path) == []  # a second start applies nothing

    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (1,)  # seed inserted exactly once
        recorded = conn.execute(
            "SELECT component, version, name FROM schema_migrations ORDER BY version"
        ).fetchall()
    assert recorded == [("notes", 1, "create_notes"), ("notes", 2, "add_author")]


async def test_components_keep_separate_histories(pool, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write(tmp_path / "a", "0001_t.sql", "CREATE TABLE a_t (id int);")
    write(tmp_path / "b", "0001_t.sql", "CREATE TABLE b_t (id int);")
    assert await migrate(pool, "a", tmp_path / "a") == [1]
    assert await migrate(pool, "b", tmp_path / "b") == [1]


async def test_failed_migration_leaves_nothing_behind(pool, postgres_dsn, tmp_path):
    write(tmp_path, "0001_broken.sql", "CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(psycopg.errors.UndefinedFunction):
        await migrate(pool, "broken", tmp_path)
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)


async def test_editing_an_applied_migration_is_refused(pool, tmp_path):
    write(tmp_path, "0001_create.sql", "CREATE TABLE edited (id int);")
    await migrate(pool, "edited", tmp_path)
    write(tmp_path, "0001_create.sql", "CREATE TABLE edited (id bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(pool, "edited", tmp_path)


def test_badly_named_migration_is_refused(tmp_path):
    from services.runtime.postgres import load_migrations

    write(tmp_path, "create_things.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_description.sql"):
        load_migrations(tmp_path)


async def test_services_migrating_one_fresh_database_at_once_all_succeed(postgres_dsn, tmp_path):
    # Services start together on a new database; unserialised, even CREATE TABLE IF NOT EXISTS
    # schema_migrations fails in all but one of them.
    import asyncio

    pools = [await open_pool(postgres_dsn, 1, 1) for _ in range(4)]
    for i in range(4):
        (tmp_path / f"c{i}").mkdir()
        write(tmp_path / f"c{i}", "0001_t.sql", f"CREATE TABLE concurrent_{i} (id int);")
    try:
        results = await asyncio.gather(*(migrate(pool, f"c{i}", tmp_path / f"c{i}") for i, pool in enumerate(pools)))
    finally:
        for pool in pools:
            await pool.close()
    assert results == [[1]] * 4
