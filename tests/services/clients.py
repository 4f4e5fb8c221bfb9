"""Calling the services as a given client: what the front door does for a client whose API key
it accepted, setting x-chat4all-client-id on every call (services/runtime/tenancy.py)."""

from __future__ import annotations

import functools
from typing import Any

import grpc
import pytest

from services.runtime.callers import CLIENT_ID_METADATA


class AsClient:
    """A stub whose every call carries `client` as the caller; None: an internal caller."""

    def __init__(self, stub: Any, client: str | None) -> None:
        self._stub = stub
        self.client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)
        if self.client is None:
            return method
        return functools.partial(method, metadata=((CLIENT_ID_METADATA, self.client),))


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


async def not_found(call) -> str:
    """The details of a NOT_FOUND answer (anything else fails the test)."""
    error = await rpc_error(call)
    assert error.code() == grpc.StatusCode.NOT_FOUND, (error.code(), error.details())
    return error.details()


async def stream_error(call) -> grpc.aio.AioRpcError:
    """The error a server stream ends with, asserting it sent nothing before it."""
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for response in call:
            received.append(response)
    assert received == []
    return error.value
