"""The users and conversations services started in-process through the runtime,
on a test's own database, and talked to over real gRPC channels."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psycopg

from services.conversations import servicer as conversations
from services.conversations.settings import ConversationSettings
from services.runtime.app import Runtime
from services.runtime.config import RuntimeSettings, load_settings
from services.users import servicer as users


@contextlib.asynccontextmanager
async def serving(
    module: Any, settings_class: type[RuntimeSettings], postgres_dsn: str, **settings: Any
) -> AsyncIterator[tuple[Runtime, grpc.aio.Channel]]:
    runtime = Runtime(
        load_settings(
            settings_class,
            service_name=module.__name__,
            grpc_port=0,
            postgres_dsn=postgres_dsn,
            shutdown_grace_seconds=1,
            **settings,
        )
    )
    await module.setup(runtime)
    await runtime.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}")
    try:
        yield runtime, channel
    finally:
        await channel.close()
        await runtime.stop()


def users_service(postgres_dsn: str):
    return serving(users, RuntimeSettings, postgres_dsn)


def conversations_service(postgres_dsn: str, users_target: str):
    return serving(conversations, ConversationSettings, postgres_dsn, users_target=users_target)


async def query(dsn: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Read PostgreSQL directly, without blocking the event loop the servers run on."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        return await (await conn.execute(sql, params)).fetchall()


async def execute(dsn: str, sql: str, params: tuple = ()) -> None:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await conn.execute(sql, params)
