"""Every service process registers its contract with health and reflection,
and RPCs without logic answer UNIMPLEMENTED, never a fake success."""

import grpc
import pytest
from google.protobuf import message_factory

from services.conversations import servicer as conversations
from services.files import servicer as files
from services.messaging import servicer as messaging
from services.runtime.app import Runtime
from services.runtime.config import load_settings
from services.users import servicer as users
from tests.support.grpc_probe import health_status, reflected_services

SERVICES = [messaging, conversations, users, files]


@pytest.fixture(params=SERVICES, ids=lambda module: module.SERVICE_NAME)
async def running(request):
    module = request.param
    runtime = Runtime(load_settings(service_name=module.__name__, grpc_port=0, shutdown_grace_seconds=1))
    await module.setup(runtime)
    await runtime.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}")
    yield module, runtime, channel
    await channel.close()
    await runtime.stop()


async def test_health_and_reflection_name_the_service(running):
    module, runtime, channel = running
    assert await health_status(channel, module.SERVICE_NAME) == "SERVING"
    assert module.SERVICE_NAME in await reflected_services(channel)


async def test_every_rpc_answers_unimplemented(running):
    module, runtime, channel = running
    descriptor = module.SERVICE
    assert descriptor.methods, "a public service without RPCs"
    for method in descriptor.methods:
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        path = f"/{descriptor.full_name}/{method.name}"
        kwargs = dict(request_serializer=request_class.SerializeToString, response_deserializer=response_class.FromString)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            if method.server_streaming:
                async for _ in channel.unary_stream(path, **kwargs)(request_class(), timeout=5):
                    pass
            else:
                await channel.unary_unary(path, **kwargs)(request_class(), timeout=5)
        assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED, path
        assert method.name in error.value.details()

