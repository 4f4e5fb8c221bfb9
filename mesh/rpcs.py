"""The RPCs of the contract as the front door sees them, read from the descriptor set.

An RPC is public when its proto gives it a `chat4all.auth.v1.required_scope`; without one it is
internal (e.g. ConversationService.ApplyUserMerge, for the services themselves) and the front
door has no route to it. A public unary RPC bound to HTTP GET is a read: it changes nothing, so
the front door may retry it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from chat4all.auth.v1 import options_pb2  # registers the required_scope option
from google.api import annotations_pb2  # registers the google.api.http option
from google.protobuf import descriptor_pb2


@dataclass(frozen=True)
class Rpc:
    service: str  # "chat4all.users.v1.UserService"
    name: str  # "GetUser"
    public: bool  # has a required_scope: callable through the front door
    streaming: bool  # either side streams: no deadline at the front door
    read: bool  # unary and bound to HTTP GET: no side effects, safe to retry

    @property
    def path(self) -> str:
        """The gRPC path; transcoded REST calls carry it too."""
        return f"/{self.service}/{self.name}"


def load(descriptor_set: Path) -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())


def services_in(descriptor_set: Path, packages: Iterable[str]) -> list[str]:
    """Full names of the gRPC services that `packages` define in a FileDescriptorSet."""
    wanted = set(packages)
    return sorted({f"{f.package}.{s.name}" for f in load(descriptor_set).file if f.package in wanted for s in f.service})


def is_public(method: descriptor_pb2.MethodDescriptorProto) -> bool:
    return method.options.HasExtension(options_pb2.required_scope)


def rpcs_of(descriptor_set: Path, services: Iterable[str]) -> list[Rpc]:
    """Every RPC of `services`, public and internal, in the contract's order."""
    wanted = set(services)
    found: list[Rpc] = []
    for file in load(descriptor_set).file:
        for service in file.service:
            full_name = f"{file.package}.{service.name}"
            if full_name not in wanted:
                continue
            wanted.discard(full_name)
            for method in service.method:
                streaming = method.client_streaming or method.server_streaming
                http = method.options.Extensions[annotations_pb2.http]
                found.append(Rpc(full_name, method.name, public=is_public(method), streaming=streaming,
                                 read=not streaming and http.WhichOneof("pattern") == "get"))
    if wanted:
        raise LookupError(f"not in {descriptor_set}: {', '.join(sorted(wanted))}")
    return found
