"""One conversation, many channels, on the real local platform (platformctl on free ports):
a group bound to a Telegram group, with members on WhatsApp, Instagram and internal. Every
connector talks to its platform's emulator."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.conversations.v1 import request_response_pb2 as conversation_requests
from chat4all.messaging.v1 import message_pb2

from tests.support.platform import all_connectors_fast, running_platform
from tests.support.platform_client import PlatformClient
from tests.support.scenarios import send_until_accepted, settled

S = message_pb2.DeliveryStatus
C = channel_pb2.Channel
WENT_OUT = frozenset({S.DELIVERY_STATUS_SENT, S.DELIVERY_STATUS_DELIVERED, S.DELIVERY_STATUS_READ})


@pytest.fixture(scope="module")
def platform():
    with running_platform(all_connectors_fast) as handle:
        handle.check("up", timeout=300)
        yield handle


Client = PlatformClient

@pytest.fixture
async def client(platform):
    client = Client(platform.raw)
    yield client
    await client.close()


async def texts_received(client: Client, tag: str, expected: int) -> dict[str, list[str]]:
    """What each platform received whose text holds `tag`, once `expected` arrived in all (and a
    moment more, for any duplicate to show): {"telegram": [...], "whatsapp": [...], "instagram": [...]}."""

    async def snapshot() -> dict[str, list[str]]:
        telegram = (await client.emulator("telegram", "GET", "messages", params={"limit": "100000"}))["messages"]
        whatsapp = (await client.emulator("whatsapp", "GET", "messages"))["messages"]
        instagram = (await client.emulator("instagram", "GET", "messages"))["messages"]
        found = {
            "telegram": [m["message"].get("text", "") for m in telegram],
            "whatsapp": [(m["body"].get("text") or {}).get("body", "") for m in whatsapp],
            "instagram": [(m["body"].get("message") or {}).get("text", "") for m in instagram],
        }
        return {name: [t for t in texts if tag in t] for name, texts in found.items()}

    async with asyncio.timeout(60):
        while sum(map(len, (await snapshot()).values())) < expected:
            await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)
    return await snapshot()


async def test_a_group_across_telegram_whatsapp_instagram_and_internal(client):
    tag = uuid.uuid4().hex[:6]
    group_chat = -(10**12 + int(time.time() * 1000) % 10**9)  # a Telegram supergroup id
    wa_user, ig_user = str(int(time.time() * 1000)), str(int(time.time() * 1000) + 1)
    agent = await client.user("Ana")
    colleague = await client.user("Caio")  # internal: reads the conversation's stream
    whatsapp_member = await client.user("Bia", C.CHANNEL_WHATSAPP, wa_user)
    instagram_member = await client.user("Duda", C.CHANNEL_INSTAGRAM, ig_user)
    # Both wrote to the business recently: their 24-hour windows are open.
    await client.emulator("whatsapp", "POST", "inbound", {"phone_number_id": client.phone_number_id, "from": wa_user, "type": "text", "text": "hi"})
    await client.emulator("instagram", "POST", "inbound", {"ig_user_id": client.ig_account, "from": ig_user, "text": "hi"})

    created = await client.conversations.CreateConversation(conversation_requests.CreateConversationRequest(
        request_id=str(uuid.uuid4()), type=conversation_pb2.CONVERSATION_TYPE_GROUP, title=f"team {tag}",
        members=[conversation_pb2.Member(user_id=u) for u in (agent, colleague, whatsapp_member, instagram_member)],
        platform_binding=conversation_pb2.PlatformBinding(
            channel=C.CHANNEL_TELEGRAM, account_id=client.bot_token.split(":")[0], external_group_id=str(group_chat)),
    ))
    conversation = {"conversation_id": created.conversation.conversation_id, "sender_user_id": agent}

    # One message from an internal member reaches every other member once, in order, each on
    # their own channel; the group on Telegram gets it once, named.
    ids = [await send_until_accepted(client.messages, conversation, f"{tag} m{i}") for i in range(3)]
    received = await texts_received(client, tag, 9)
    expected = [f"Ana: {tag} m{i}" for i in range(3)]
    assert received == {"telegram": expected, "whatsapp": expected, "instagram": expected}
    for message in await settled(client.messages, ids, final=WENT_OUT | {S.DELIVERY_STATUS_DEAD_LETTERED}):
        deliveries = {(d.recipient.channel, d.recipient.user_id): d.status for d in message.deliveries}
        assert deliveries.keys() == {(C.CHANNEL_TELEGRAM, ""), (C.CHANNEL_WHATSAPP, whatsapp_member),
                                     (C.CHANNEL_INSTAGRAM, instagram_member), (C.CHANNEL_INTERNAL, colleague)}
        assert set(deliveries.values()) <= WENT_OUT

    # A Telegram user writes in the group: relayed to WhatsApp and Instagram with her name,
    # never back to Telegram.
    await client.emulator("telegram", "POST", f"bots/{client.bot_token}/updates", {
        "chat": {"id": group_chat, "type": "supergroup", "title": f"team {tag}"},
        "from": {"id": 777000 + int(tag, 16) % 1000, "first_name": "Rita"}, "text": f"{tag} from telegram"})
    received = await texts_received(client, f"{tag} from telegram", 2)
    assert received == {"telegram": [], "whatsapp": [f"Rita: {tag} from telegram"], "instagram": [f"Rita: {tag} from telegram"]}

    # Removed from the group, the WhatsApp member gets nothing from the next message on.
    await client.conversations.RemoveMember(conversation_requests.RemoveMemberRequest(
        request_id=str(uuid.uuid4()), conversation_id=conversation["conversation_id"], user_id=whatsapp_member))
    await send_until_accepted(client.messages, conversation, f"{tag} after")
    received = await texts_received(client, f"{tag} after", 2)
    assert received == {"telegram": [f"Ana: {tag} after"], "whatsapp": [], "instagram": [f"Ana: {tag} after"]}
