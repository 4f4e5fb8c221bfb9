"""SendMessage while the broker is unreachable: UNAVAILABLE, nothing half-written,
and the same request_id succeeds once the broker is back."""

import signal
import uuid

import grpc
import psycopg
import pytest
from chat4all.messaging.v1 import service_pb2_grpc as messaging_grpc

from scripts.platform import binaries
from tests.e2e.test_internal_delivery import send_request
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import ChildProcess


def start_broker(log_dir, port):
    broker = ChildProcess(
        f"tansu-outage-{port}",
        [str(binaries.tansu()), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{port}", "--storage-engine", "memory://tansu/"],
        log_dir,
    )
    wait_for_port(port)
    return broker


@pytest.fixture
def own_broker_messaging(stack, log_dir):
    port = free_port()
    broker = start_broker(log_dir, port)
    service = stack.start(
        "messaging-outage", "services.messaging",
        {"C4A_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}", "C4A_KAFKA_ACK_TIMEOUT_SECONDS": "2"},
    )
    state = {"broker": broker, "port": port}
    yield service, state
    stack.stop("messaging-outage")
    state["broker"].stop()


def idempotency_rows(dsn, request_id):
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM idempotency_keys WHERE request_id = %s", (request_id,)).fetchone()[0]


async def test_unreachable_broker_answers_unavailable_and_keeps_nothing(api, own_broker_messaging, module_database, log_dir):
    service, state = own_broker_messaging
    alice, bob = await api.user("Alice"), await api.user("Bob")
    conversation = await api.conversation(alice, bob)
    async with grpc.aio.insecure_channel(service.target) as channel:
        messages = messaging_grpc.MessageServiceStub(channel)
        await messages.SendMessage(send_request(conversation, alice, "before the outage"))

        state["broker"].signal(signal.SIGKILL)
        state["broker"].stop()
        request = send_request(conversation, alice, "during the outage")
        for _ in range(2):  # a retry is refused too: no stale answer was stored
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await messages.SendMessage(request, timeout=30)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "retry with the same request_id" in error.value.details()
        assert idempotency_rows(module_database, request.request_id) == 0

        state["broker"] = start_broker(log_dir, state["port"])
        reply = await messages.SendMessage(request, timeout=60)
        assert uuid.UUID(reply.message_id).version == 4
        assert idempotency_rows(module_database, request.request_id) == 1
