"""The runtime's gRPC server in-process: health, reflection, error mapping, metrics."""

import aiohttp
import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from services.runtime.app import Runtime
from services.runtime.config import load_settings
from tests.runtime import sample_service
from tests.support.grpc_probe import health_status, reflected_services
from tests.support.ports import free_port


@pytest.fixture
async def sample():
    settings = load_settings(service_name="sample", grpc_port=0, metrics_port=free_port(), shutdown_grace_seconds=1)
    runtime = Runtime(settings)
    await sample_service.setup(runtime)
    await runtime.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.port}")
    yield runtime, channel
    await channel.close()
    await runtime.stop()


def method(channel, name):
    return channel.unary_unary(f"/{sample_service.SERVICE}/{name}")


async def test_health_is_serving_for_the_server_and_each_service(sample):
    _, channel = sample
    assert await health_status(channel) == "SERVING"
    assert await health_status(channel, sample_service.SERVICE) == "SERVING"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await health_status(channel, "chat4all.no.Such")
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_registered_services(sample):
    _, channel = sample
    assert await reflected_services(channel) == {
        sample_service.SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_unexpected_error_is_internal_without_details(sample):
    _, channel = sample
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await method(channel, "Fail")(b"")
    assert error.value.code() == grpc.StatusCode.INTERNAL
    assert error.value.details() == "internal error"
    assert "hunter2" not in str(error.value)


async def test_domain_error_carries_code_message_and_retry_info(sample):
    _, channel = sample
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await method(channel, "Reject")(b"")
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.value.details() == "slow down"
    trailers = dict(error.value.trailing_metadata())
    assert trailers["chat4all-answered-by"] == sample_service.SERVICE  # not a transport failure
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert retry.retry_delay.ToMilliseconds() == 1500


async def test_server_streaming_passes_through(sample):
    _, channel = sample
    call = channel.unary_stream(f"/{sample_service.SERVICE}/Count")(b"3")
    assert [item async for item in call] == [b"0", b"1", b"2"]


async def scrape(port: int) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            return await response.text()


def sample_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample; 0 when the labelled series does not exist yet."""
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_endpoint_counts_calls_by_code(sample):
    runtime, channel = sample
    labels = dict(grpc_service=sample_service.SERVICE, grpc_method="Sleep", grpc_type="unary")
    before = await scrape(runtime.metrics.port)
    await method(channel, "Sleep")(b"0")
    await method(channel, "Sleep")(b"0")
    with pytest.raises(grpc.aio.AioRpcError):
        await method(channel, "Fail")(b"")
    after = await scrape(runtime.metrics.port)

    ok = "grpc_server_handled_total"
    assert sample_value(after, ok, **labels, grpc_code="OK") - sample_value(before, ok, **labels, grpc_code="OK") == 2
    fail_labels = dict(labels, grpc_method="Fail", grpc_code="INTERNAL")
    assert sample_value(after, ok, **fail_labels) - sample_value(before, ok, **fail_labels) == 1
    count = "grpc_server_handling_seconds_count"
    assert sample_value(after, count, **labels) - sample_value(before, count, **labels) == 2
    # probes stay out of the RED metrics
    assert 'grpc_service="grpc.health.v1.Health"' not in after
