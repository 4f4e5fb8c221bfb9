"""A service as a real process: JSON logs with trace ids, graceful shutdown on SIGTERM."""

import asyncio
import json
import secrets
import signal
import sys

import grpc
import pytest

from tests.runtime import sample_service
from tests.support.grpc_probe import health_status
from tests.support.ports import free_port
from tests.support.processes import ChildProcess


@pytest.fixture
async def sample_process(log_dir):
    port = free_port()
    process = ChildProcess(
        f"sample-{port}",
        [sys.executable, "-m", "tests.runtime.sample_service"],
        log_dir,
        env={"C4A_GRPC_PORT": str(port), "C4A_METRICS_PORT": str(free_port()), "C4A_SHUTDOWN_GRACE_SECONDS": "10"},
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    process.address = f"127.0.0.1:{port}"
    try:
        await asyncio.wait_for(channel.channel_ready(), 20)
        yield process, channel
    finally:
        await channel.close()
        process.stop()


def log_lines(process: ChildProcess) -> list[dict]:
    return [json.loads(line) for line in process.log_text().splitlines() if line.strip()]


async def test_every_log_line_is_json_and_rpc_lines_carry_the_callers_trace_id(sample_process):
    process, channel = sample_process
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    await channel.unary_unary(f"/{sample_service.SERVICE}/Sleep")(b"0", metadata=(("traceparent", traceparent),))
    process.stop()

    lines = log_lines(process)  # raises if any line is not JSON
    assert lines and all(line["service"] == "sample" for line in lines)
    finished = [line for line in lines if line["message"] == "rpc finished" and line.get("grpc_method") == "Sleep"]
    assert len(finished) == 1
    assert finished[0]["trace_id"] == trace_id
    assert finished[0]["grpc_code"] == "OK"


async def test_sigterm_lets_an_in_flight_call_finish_then_closes_resources(sample_process):
    process, channel = sample_process
    assert await health_status(channel) == "SERVING"
    in_flight = asyncio.ensure_future(channel.unary_unary(f"/{sample_service.SERVICE}/Sleep")(b"1.5"))
    await asyncio.sleep(0.5)  # the call has reached the server and is sleeping
    assert not in_flight.done()

    process.signal(signal.SIGTERM)
    assert await in_flight == b"slept 1.5"  # drained, not cut off
    assert await asyncio.to_thread(process.proc.wait, 15) == 0

    messages = [line["message"] for line in log_lines(process)]
    assert messages.index("draining") < messages.index("rpc finished") < messages.index("resources closed")
    assert messages[-1] == "stopped"


async def test_new_calls_are_refused_once_draining(sample_process):
    process, channel = sample_process
    in_flight = asyncio.ensure_future(channel.unary_unary(f"/{sample_service.SERVICE}/Sleep")(b"2"))
    await asyncio.sleep(0.5)
    process.signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    fresh = grpc.aio.insecure_channel(process.address)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await fresh.unary_unary(f"/{sample_service.SERVICE}/Sleep")(b"0", timeout=2)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await fresh.close()
    assert await in_flight == b"slept 2"
