"""The router process: two consumer pipelines (messages, inbound) on the shared
runtime, which gives it health, metrics, logs and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from chat4all.connector.v1 import service_pb2_grpc as connector_grpc
from chat4all.conversations.v1 import service_pb2_grpc as conversation_grpc
from chat4all.files.v1 import service_pb2_grpc as file_grpc
from chat4all.users.v1 import service_pb2_grpc as user_grpc

import services.messaging
from services.messaging import topics
from services.messaging.attachments import Attachments
from services.messaging.directory import Directory
from services.router.connectors import Connector, parse_connectors
from services.router.inbound import InboundIngest
from services.router.pipeline import Pipeline
from services.router.recipients import RecipientResolver
from services.router.routing import Router
from services.router.settings import RouterSettings
from services.runtime import kafka
from services.runtime.app import Runtime

log = logging.getLogger("chat4all.router")
MESSAGE_STORE_MIGRATIONS = Path(services.messaging.__file__).parent / "migrations"


async def setup(runtime: Runtime) -> None:
    settings: RouterSettings = runtime.settings  # type: ignore[assignment]
    await kafka.ensure_topics(settings.kafka_bootstrap, topics.PARTITIONS)
    pool = await runtime.postgres("messaging", MESSAGE_STORE_MIGRATIONS)
    producer = await runtime.kafka_producer()
    conversations = conversation_grpc.ConversationServiceStub(await runtime.channel(settings.conversations_target))
    users = user_grpc.UserServiceStub(await runtime.channel(settings.users_target))
    connectors = {
        channel: Connector(channel, account, connector_grpc.MessageConnectorStub(await runtime.channel(target)))
        for channel, (target, account) in parse_connectors(settings.connectors).items()
    }

    directory = Directory(await runtime.redis(), conversations, users)
    await directory.start()
    runtime.on_shutdown(directory.stop)
    attachments = Attachments(file_grpc.FileServiceStub(await runtime.channel(settings.files_target)))
    router = Router(settings, pool, producer, RecipientResolver(directory), connectors, attachments)
    inbound = InboundIngest(producer, users, conversations, attachments, settings.inbound_owner_client_id)
    pipelines = [
        Pipeline("messages", await _consumer(runtime, settings.consumer_group), [topics.MESSAGES], router.handle,
                 settings.max_in_flight, settings.commit_interval_seconds),
        Pipeline("inbound", await _consumer(runtime, settings.inbound_consumer_group), [topics.INBOUND], inbound.handle,
                 settings.max_in_flight, settings.commit_interval_seconds),
    ]
    tasks = [asyncio.create_task(p.run(), name=f"pipeline-{p.name}") for p in pipelines]

    def stop_if_crashed(task: asyncio.Task) -> None:
        # A pipeline that died must not leave a healthy-looking process that routes nothing.
        if not task.cancelled() and task.exception() is not None:
            log.error("pipeline crashed; shutting down", exc_info=task.exception())
            runtime.request_shutdown()

    for task in tasks:
        task.add_done_callback(stop_if_crashed)

    async def stop_pipelines() -> None:
        await asyncio.gather(*(p.stop(settings.shutdown_grace_seconds) for p in pipelines))
        await asyncio.gather(*tasks, return_exceptions=True)

    runtime.on_shutdown(stop_pipelines)


async def _consumer(runtime: Runtime, group_id: str):
    consumer = kafka.open_consumer(runtime.settings, group_id=group_id)
    await consumer.start()
    return await runtime.own(consumer, lambda c: c.stop())
