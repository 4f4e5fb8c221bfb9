"""A minimal service on the shared runtime, run as a real process by the tests.

Its methods take and return raw bytes (no protobuf) so the runtime is tested
on its own: Sleep holds a call open (graceful shutdown), Fail raises an
unexpected error (error mapping), Reject raises a domain error with a retry time.
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from services.runtime.app import Runtime, run_service
from services.runtime.errors import ResourceExhausted

SERVICE = "chat4all.testing.v1.SampleService"
log = logging.getLogger("sample")


async def sleep(request: bytes, context) -> bytes:
    await asyncio.sleep(float(request.decode() or "0"))
    return b"slept " + request


async def fail(request: bytes, context) -> bytes:
    raise ValueError("password=hunter2 must never reach a client")


async def reject(request: bytes, context) -> bytes:
    raise ResourceExhausted("slow down", retry_after_seconds=1.5)


async def count(request: bytes, context):
    for i in range(int(request.decode())):
        yield str(i).encode()


def handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
            "Reject": grpc.unary_unary_rpc_method_handler(reject),
            "Count": grpc.unary_stream_rpc_method_handler(count),
        },
    )


async def setup(runtime: Runtime) -> None:
    runtime.add_generic_handler(handler(), SERVICE)

    async def close_resources() -> None:
        log.info("resources closed")

    runtime.on_shutdown(close_resources)


if __name__ == "__main__":
    run_service("sample", setup)
