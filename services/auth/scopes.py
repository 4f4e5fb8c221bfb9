"""Which scope each RPC needs, read from the contract itself: the `chat4all.auth.v1.required_scope`
option on every public RPC. An RPC without it is internal (connectors, ApplyUserMerge...) and
the front door refuses it to every client.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

import chat4all
from chat4all.auth.v1 import message_pb2, options_pb2

# The names that travel in `x-chat4all-scopes` and that people type (`--scopes admin,read`).
NAMES = {
    message_pb2.SCOPE_SEND: "send",
    message_pb2.SCOPE_READ: "read",
    message_pb2.SCOPE_ADMIN: "admin",
}
BY_NAME = {name: number for number, name in NAMES.items()}

# Any valid key may ask whether a service is up and what it offers.
KEY_ONLY_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
)


def required_scopes() -> dict[str, int]:
    """{"/chat4all.messaging.v1.MessageService/SendMessage": SCOPE_SEND, ...} for every RPC of
    every generated chat4all.<area>.<version> service that carries the option."""
    required: dict[str, int] = {}
    for area in pkgutil.iter_modules(chat4all.__path__, "chat4all."):
        if not area.ispkg:
            continue
        for version in pkgutil.iter_modules(importlib.import_module(area.name).__path__, f"{area.name}."):
            if not version.ispkg or importlib.util.find_spec(f"{version.name}.service_pb2") is None:
                continue
            module = importlib.import_module(f"{version.name}.service_pb2")
            for service in module.DESCRIPTOR.services_by_name.values():
                for method in service.methods:
                    options = method.GetOptions()
                    if options.HasExtension(options_pb2.required_scope):
                        required[f"/{service.full_name}/{method.name}"] = options.Extensions[options_pb2.required_scope]
    return required


def names(numbers: frozenset[int] | list[int]) -> str:
    """"send,read": the header value, in a fixed order."""
    return ",".join(NAMES[n] for n in sorted(numbers) if n in NAMES)
