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
from services.users.settings import UserSettings
from tests.support.ports import free_port


@contextlib.asynccontextmanager
async def serving(
    module: Any, settings_class: type[RuntimeSettings], postgres_dsn: str, **settings: Any
) -> AsyncIterator[tuple[Runtime, grpc.aio.Channel]]:
    defaults = dict(service_name=module.__name__, grpc_port=0, postgres_dsn=postgres_dsn, shutdown_grace_seconds=1)
    runtime = Runtime(load_settings(settings_class, **{**defaults, **settings}))
    await module.setup(runtime)
    await runtime.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}")
    try:
        yield runtime, channel
    finally:
        await channel.close()
        await runtime.stop()


# Nothing listens on port 1: a users service started alone gets UNAVAILABLE from its membership
# hand-over instead of reaching a conversations service of a local platform on the default port.
NO_CONVERSATIONS = "127.0.0.1:1"


def users_service(postgres_dsn: str, conversations_target: str = NO_CONVERSATIONS, **settings: Any):
    return serving(users, UserSettings, postgres_dsn, conversations_target=conversations_target, **settings)


def conversations_service(postgres_dsn: str, users_target: str, **settings: Any):
    return serving(conversations, ConversationSettings, postgres_dsn, users_target=users_target, **settings)


@contextlib.asynccontextmanager
async def users_and_conversations(
    postgres_dsn: str, **user_settings: Any
) -> AsyncIterator[tuple[grpc.aio.Channel, grpc.aio.Channel]]:
    """Both services, each calling the other (users -> conversations for merges, conversations ->
    users for members): the conversations port is chosen first so the users service knows it."""
    conversations_port = free_port()
    async with users_service(postgres_dsn, f"127.0.0.1:{conversations_port}", **user_settings) as (users_runtime, users_channel):
        async with conversations_service(
            postgres_dsn, f"127.0.0.1:{users_runtime.port}", grpc_port=conversations_port
        ) as (_, conversations_channel):
            yield users_channel, conversations_channel


async def query(dsn: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Read PostgreSQL directly, without blocking the event loop the servers run on."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        return await (await conn.execute(sql, params)).fetchall()


async def execute(dsn: str, sql: str, params: tuple = ()) -> None:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await conn.execute(sql, params)
