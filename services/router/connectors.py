"""The connectors the router hands messages to, one MessageConnector per channel."""

from __future__ import annotations

from dataclasses import dataclass

from chat4all.channel.v1 import channel_pb2
from chat4all.connector.v1 import service_pb2_grpc

from services.runtime.config import ConfigError


@dataclass
class Connector:
    channel: int
    account_id: str  # the business account that sends when a conversation names none
    stub: service_pb2_grpc.MessageConnectorStub


def parse_connectors(entries: tuple[str, ...]) -> dict[int, tuple[str, str]]:
    """`telegram=127.0.0.1:18401/<account_id>` entries -> {channel: (target, account_id)}."""
    connectors = {}
    for entry in entries:
        name, _, rest = entry.partition("=")
        target, _, account = rest.partition("/")
        enum_name = f"CHANNEL_{name.strip().upper()}"
        if enum_name not in channel_pb2.Channel.keys() or not target or not account:
            raise ConfigError(f"C4A_CONNECTORS entry {entry!r} must look like telegram=127.0.0.1:18401/<account_id>")
        connectors[channel_pb2.Channel.Value(enum_name)] = (target.strip(), account.strip())
    return connectors
