"""A client of a running test platform, calling its services directly (inside the mesh, so as
an internal caller) and its platform emulators' control APIs."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import grpc
from chat4all.conversations.v1 import service_pb2_grpc as conversation_grpc
from chat4all.files.v1 import service_pb2_grpc as file_grpc
from chat4all.messaging.v1 import service_pb2_grpc as messaging_grpc
from chat4all.users.v1 import message_pb2 as user_pb2
from chat4all.users.v1 import request_response_pb2 as user_requests
from chat4all.users.v1 import service_pb2_grpc as user_grpc


class PlatformClient:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.apps = apps = raw["apps"]
        names = ("messaging", "users", "conversations", "files")
        self.channels = [grpc.aio.insecure_channel(f"127.0.0.1:{apps[name]['grpc_port']}") for name in names]
        self.messages = messaging_grpc.MessageServiceStub(self.channels[0])
        self.users = user_grpc.UserServiceStub(self.channels[1])
        self.conversations = conversation_grpc.ConversationServiceStub(self.channels[2])
        self.files = file_grpc.FileServiceStub(self.channels[3])
        self.bot_token = apps["telegram"]["env"]["C4A_TELEGRAM_BOT_TOKEN"]
        self.bot_id = self.bot_token.split(":")[0]
        self.phone_number_id = apps["whatsapp"]["env"]["C4A_WHATSAPP_PHONE_NUMBER_ID"]
        self.ig_account = apps["instagram"]["env"]["C4A_INSTAGRAM_ACCOUNT_ID"]
        self.http = aiohttp.ClientSession()

    async def emulator(self, name: str, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        """A call to the control API (/_emulator/...) of the `name` platform's emulator."""
        url = f"http://127.0.0.1:{self.apps[name + '_emulator']['http_port']}/_emulator/{path}"
        async with self.http.request(method, url, json=body, params=params) as response:
            assert response.status < 300, await response.text()
            return await response.json()

    async def user(self, name: str, channel: int = 0, external_id: str = "") -> str:
        """A new user's id, with one external identity when `channel` is given."""
        identities = [user_pb2.ExternalIdentity(channel=channel, external_id=external_id)] if channel else []
        created = await self.users.CreateUser(user_requests.CreateUserRequest(
            request_id=str(uuid.uuid4()), display_name=name, identities=identities))
        return created.user.user_id

    async def close(self) -> None:
        await self.http.close()
        for channel in self.channels:
            await channel.close()
