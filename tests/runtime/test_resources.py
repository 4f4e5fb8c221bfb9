"""Resources a service opens through the runtime: real PostgreSQL (with its
migrations), Redis and a Kafka producer, all closed once the server drained."""

import uuid

import aiokafka.errors
import grpc
import psycopg
import pytest
import redis.exceptions

from services.runtime.app import Runtime
from services.runtime.config import load_settings
from services.runtime.redis_client import open_redis
from tests.runtime import sample_service


async def test_runtime_opens_migrated_pool_redis_and_producer_and_closes_them(postgres_dsn, kafka_bootstrap, tmp_path):
    (tmp_path / "0001_create_samples.sql").write_text("CREATE TABLE samples (id uuid PRIMARY KEY);")
    name = f"sample-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        service_name=name, grpc_port=0, postgres_dsn=postgres_dsn, kafka_bootstrap=kafka_bootstrap
    )
    runtime = Runtime(settings)
    await sample_service.setup(runtime)
    pool = await runtime.postgres("sample", tmp_path)
    cache = await runtime.redis()
    producer = await runtime.kafka_producer()
    await runtime.start()

    async with pool.connection() as conn:
        await conn.execute("INSERT INTO samples VALUES (%s)", (uuid.uuid4(),))
    key = f"c4a-test:{uuid.uuid4().hex}"
    assert await cache.set(key, "1", ex=30)
    await cache.delete(key)
    await producer.send_and_wait("runtime-resources", b"x")
    observer = await open_redis(settings.redis_url, "observer")
    assert [c for c in await observer.client_list() if c["name"] == name]

    await runtime.stop()
    assert pool.closed
    assert not [c for c in await observer.client_list() if c["name"] == name]
    await observer.aclose()
    with pytest.raises(aiokafka.errors.ProducerClosed):
        await producer.send("runtime-resources", b"y")
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM samples").fetchone() == (1,)
        assert conn.execute("SELECT version FROM schema_migrations WHERE component='sample'").fetchall() == [(1,)]
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}")
    with pytest.raises(grpc.aio.AioRpcError):
        await channel.unary_unary(f"/{sample_service.SERVICE}/Sleep")(b"0", timeout=1)
    await channel.close()


async def test_unreachable_redis_fails_at_start_up():
    with pytest.raises(redis.exceptions.ConnectionError):
        await open_redis("redis://127.0.0.1:1/0")
