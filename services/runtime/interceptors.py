"""One server interceptor for the three cross-cutting concerns of every RPC.

Errors: a `ServiceError` becomes its status and message; NotImplementedError
becomes UNIMPLEMENTED; anything else is logged with its traceback and reaches
the client as INTERNAL without details, so nothing internal leaks.
Logging: one JSON line per finished RPC with its code and duration.
Metrics: started/handled counters, a latency histogram and an in-flight gauge.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from services.runtime import metrics
from services.runtime.errors import ServiceError
from services.runtime.status_details import ANSWERED_BY_TRAILER, status_trailers

log = logging.getLogger("chat4all.rpc")

# Health probes and reflection would drown the access log and skew RED metrics.
_QUIET_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


def _rpc_type(handler: grpc.RpcMethodHandler) -> str:
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    if handler.response_streaming:
        return "server_stream"
    return "unary"


def wrap_handler(handler: grpc.RpcMethodHandler, wrapper: Callable[[Callable, bool], Callable]) -> grpc.RpcMethodHandler:
    """Rebuild `handler` with its behaviour passed through `wrapper`."""
    if handler.request_streaming and handler.response_streaming:
        behavior, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        behavior, factory = handler.stream_unary, grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        behavior, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    else:
        behavior, factory = handler.unary_unary, grpc.unary_unary_rpc_method_handler
    return factory(
        wrapper(behavior, handler.response_streaming),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class _Call:
    """Bookkeeping for one RPC: turns exceptions into statuses and records the outcome."""

    def __init__(self, service: str, method: str, rpc_type: str) -> None:
        self.service, self.method, self.rpc_type = service, method, rpc_type
        self.started = time.perf_counter()
        metrics.RPC_STARTED.labels(service, method, rpc_type).inc()
        metrics.RPC_IN_FLIGHT.labels(service, method).inc()

    @contextlib.asynccontextmanager
    async def observing(self, context: grpc.aio.ServicerContext):
        """Around the handler: map its exception to a status, then record the outcome."""
        cancelled = False
        try:
            yield
        except grpc.aio.AbortError:
            raise
        except _CANCELLATION:
            cancelled = True
            raise
        except BaseException as error:  # noqa: BLE001 - mapped to a status
            await self.fail(error, context)
        finally:
            self.finish(context, cancelled)

    async def fail(self, error: BaseException, context: grpc.aio.ServicerContext) -> None:
        answered = ((ANSWERED_BY_TRAILER, self.service),)
        if isinstance(error, ServiceError):
            await context.abort(
                error.code,
                error.message,
                trailing_metadata=status_trailers(error.code, error.message, error.retry_after_seconds, error.reason) + answered,
            )
        if isinstance(error, NotImplementedError):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{self.method} is not implemented yet", answered)
        log.error("unhandled error in %s/%s", self.service, self.method, exc_info=error)
        await context.abort(grpc.StatusCode.INTERNAL, "internal error", answered)

    def finish(self, context: grpc.aio.ServicerContext, cancelled: bool = False) -> None:
        elapsed = time.perf_counter() - self.started
        code = grpc.StatusCode.CANCELLED if cancelled else (context.code() or grpc.StatusCode.OK)
        if isinstance(code, int):  # grpc.aio reports codes set via abort() as ints
            code = next(c for c in grpc.StatusCode if c.value[0] == code)
        metrics.RPC_IN_FLIGHT.labels(self.service, self.method).dec()
        metrics.RPC_HANDLED.labels(self.service, self.method, self.rpc_type, code.name).inc()
        metrics.RPC_SECONDS.labels(self.service, self.method, self.rpc_type).observe(elapsed)
        level = logging.WARNING if code in _SERVER_FAULTS else logging.INFO
        log.log(
            level,
            "rpc finished",
            extra={
                "grpc_service": self.service,
                "grpc_method": self.method,
                "grpc_code": code.name,
                "duration_ms": round(elapsed * 1000, 3),
            },
        )


# The call ended without a status of ours: the client went away, or the process is stopping.
_CANCELLATION = (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt, SystemExit)

_SERVER_FAULTS = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DATA_LOSS,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        full_method: str = handler_call_details.method
        if handler is None or full_method.startswith(_QUIET_PREFIXES):
            return handler
        service, _, method = full_method.lstrip("/").rpartition("/")
        rpc_type = _rpc_type(handler)

        def wrapper(behavior: Callable, response_streaming: bool) -> Callable:
            if response_streaming:

                async def stream(request: Any, context: grpc.aio.ServicerContext):
                    call = _Call(service, method, rpc_type)
                    async with call.observing(context):
                        result = behavior(request, context)
                        if inspect.isasyncgen(result):
                            async for response in result:
                                yield response
                        elif inspect.isawaitable(result):
                            await result  # a handler that writes with context.write()

                return stream

            async def unary(request: Any, context: grpc.aio.ServicerContext):
                call = _Call(service, method, rpc_type)
                async with call.observing(context):
                    result = behavior(request, context)
                    return await result if inspect.isawaitable(result) else result

            return unary

        return wrap_handler(handler, wrapper)

