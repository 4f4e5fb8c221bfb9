"""Every service process registers its contract with health and reflection,
and RPCs without logic answer UNIMPLEMENTED, never a fake success.

STILL_UNIMPLEMENTED lists, per service, the RPCs that have no logic yet; an RPC
leaves the list only together with the tests of its behaviour."""

import importlib

import grpc
import pytest
from google.protobuf import message_factory

from services.conversations import servicer as conversations
from services.files import servicer as files
from services.messaging import servicer as messaging
from services.runtime.app import Runtime
from services.runtime.config import RuntimeSettings, load_settings
from services.users import servicer as users
from services.webhooks import servicer as webhooks
from tests.support.grpc_probe import health_status, reflected_services

SERVICES = [messaging, conversations, users, files, webhooks]


def _all(module) -> list[str]:
    return [method.name for method in module.SERVICE.methods]


STILL_UNIMPLEMENTED = {
    messaging: [],
    conversations: [],
    users: [],
    files: [],
    webhooks: [],
}


def _settings_class(module) -> type[RuntimeSettings]:
    """The service's own settings class, if its package has a `settings` module (as `__main__` uses)."""
    try:
        found = importlib.import_module(module.__name__.rpartition(".")[0] + ".settings")
    except ModuleNotFoundError:
        return RuntimeSettings
    classes = [v for v in vars(found).values() if isinstance(v, type) and issubclass(v, RuntimeSettings)]
    return next((c for c in classes if c is not RuntimeSettings), RuntimeSettings)


@pytest.fixture(params=SERVICES, ids=lambda module: module.SERVICE_NAME)
async def running(request, postgres_dsn, kafka_bootstrap):
    module = request.param
    settings_class = _settings_class(module)
    runtime = Runtime(
        load_settings(
            settings_class,
            service_name=module.__name__,
            grpc_port=0,
            shutdown_grace_seconds=1,
            postgres_dsn=postgres_dsn,
            kafka_bootstrap=kafka_bootstrap,
        )
    )
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


def _servicer_class(module) -> type:
    generated = importlib.import_module(f"{module.SERVICE.file.package}.service_pb2_grpc")
    base = getattr(generated, f"{module.SERVICE.name}Servicer")
    return next(v for v in vars(module).values() if isinstance(v, type) and issubclass(v, base) and v is not base)


def test_unimplemented_lists_match_the_servicers():
    """An RPC missing from the list has its own method on the servicer (and its own tests)."""
    for module, names in STILL_UNIMPLEMENTED.items():
        assert set(names) <= set(_all(module)), module.SERVICE_NAME
        servicer = _servicer_class(module)
        missing = {name for name in _all(module) if name not in names and name not in vars(servicer)}
        assert not missing, f"{module.SERVICE_NAME}: {sorted(missing)} have no logic; list them as unimplemented"


async def test_rpcs_without_logic_answer_unimplemented(running):
    module, runtime, channel = running
    descriptor = module.SERVICE
    assert descriptor.methods, "a public service without RPCs"
    for method in descriptor.methods:
        if method.name not in STILL_UNIMPLEMENTED[module]:
            continue
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
        assert error.value.details(), path

