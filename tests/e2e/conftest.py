"""The message path as real processes: conversations, users, messaging and the
router as subprocesses on the test's own database and Kafka broker."""

from __future__ import annotations

import uuid

import grpc
import pytest
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.conversations.v1 import request_response_pb2 as conversation_requests
from chat4all.conversations.v1 import service_pb2_grpc as conversation_grpc
from chat4all.messaging.v1 import service_pb2_grpc as messaging_grpc
from chat4all.users.v1 import request_response_pb2 as user_requests
from chat4all.users.v1 import service_pb2_grpc as user_grpc

from tests.support.ports import free_port
from tests.support.stack import Stack


@pytest.fixture(scope="module")
def module_database():
    import psycopg

    from tests.conftest import ADMIN_DSN

    name = f"c4a_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def stack(log_dir, module_database, kafka_bootstrap):
    stack = Stack(
        log_dir,
        {
            "C4A_POSTGRES_DSN": module_database,
            "C4A_KAFKA_BOOTSTRAP": kafka_bootstrap,
            # Consumer groups of their own, so modules sharing the broker do not meet.
            "C4A_CONSUMER_GROUP": f"router-{uuid.uuid4().hex[:8]}",
            "C4A_INBOUND_CONSUMER_GROUP": f"router-inbound-{uuid.uuid4().hex[:8]}",
        },
    )
    try:
        # Users and conversations call each other (a merge moves memberships): both ports first.
        users_port, conversations_port = free_port(), free_port()
        users = stack.start("users", "services.users", {"C4A_CONVERSATIONS_TARGET": f"127.0.0.1:{conversations_port}"}, users_port)
        conversations = stack.start("conversations", "services.conversations", {"C4A_USERS_TARGET": users.target}, conversations_port)
        targets = {"C4A_USERS_TARGET": users.target, "C4A_CONVERSATIONS_TARGET": conversations.target}
        stack.env.update(targets)
        stack.start("messaging", "services.messaging")
        stack.start("router", "services.router")
        yield stack
    finally:
        stack.stop_all()


class Api:
    """The public API as a client sees it."""

    def __init__(self, stack: Stack) -> None:
        self.channels = [grpc.aio.insecure_channel(stack.services[name].target) for name in ("messaging", "conversations", "users")]
        self.messages = messaging_grpc.MessageServiceStub(self.channels[0])
        self.conversations = conversation_grpc.ConversationServiceStub(self.channels[1])
        self.users = user_grpc.UserServiceStub(self.channels[2])

    async def user(self, name: str, *identities) -> str:
        reply = await self.users.CreateUser(
            user_requests.CreateUserRequest(request_id=str(uuid.uuid4()), display_name=name, identities=list(identities))
        )
        return reply.user.user_id

    async def conversation(self, *members: str, binding=None) -> str:
        request = conversation_requests.CreateConversationRequest(
            request_id=str(uuid.uuid4()),
            type=conversation_pb2.ConversationType.CONVERSATION_TYPE_DIRECT if len(members) == 2 and binding is None
            else conversation_pb2.ConversationType.CONVERSATION_TYPE_GROUP,
            members=[conversation_pb2.Member(user_id=m) for m in members],
        )
        if binding is not None:
            request.platform_binding.CopyFrom(binding)
        return (await self.conversations.CreateConversation(request)).conversation.conversation_id

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


@pytest.fixture
async def api(stack):
    client = Api(stack)
    yield client
    await client.close()
