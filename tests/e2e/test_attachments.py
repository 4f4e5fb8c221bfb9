"""Messages with files on the real local platform (platformctl on free ports): uploaded to
SeaweedFS through presigned URLs, processed (type from the bytes, clamd scan, thumbnail),
attached, and delivered by each connector the way its platform wants media; and media a
platform user sent, imported into S3 and referenced by the stored message."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
import uuid

import grpc
import pytest
from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.conversations.v1 import request_response_pb2 as conversation_requests
from chat4all.files.v1 import message_pb2 as file_pb2
from chat4all.files.v1 import request_response_pb2 as file_requests
from chat4all.messaging.v1 import message_pb2
from chat4all.messaging.v1 import request_response_pb2 as messaging_requests

from tests.support.platform import all_connectors_fast, running_platform
from tests.support.platform_client import PlatformClient
from tests.support.scenarios import send_until_accepted, settled
from tests.support.uploads import clean_upload, png, settled_file, upload

S = message_pb2.DeliveryStatus
C = channel_pb2.Channel
F = file_pb2.FileState
WENT_OUT = frozenset({S.DELIVERY_STATUS_SENT, S.DELIVERY_STATUS_DELIVERED, S.DELIVERY_STATUS_READ})
FINAL = WENT_OUT | {S.DELIVERY_STATUS_FAILED, S.DELIVERY_STATUS_DEAD_LETTERED}
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def platform():
    with running_platform(all_connectors_fast) as handle:
        handle.check("up", timeout=300)
        yield handle


class Client(PlatformClient):
    async def conversation(self, members: list[str], telegram_group: int | None = None) -> str:
        request = conversation_requests.CreateConversationRequest(
            request_id=str(uuid.uuid4()), type=conversation_pb2.CONVERSATION_TYPE_GROUP, title="files",
            members=[conversation_pb2.Member(user_id=u) for u in members])
        if telegram_group is not None:
            request.platform_binding.CopyFrom(conversation_pb2.PlatformBinding(
                channel=C.CHANNEL_TELEGRAM, account_id=self.bot_id, external_group_id=str(telegram_group)))
        return (await self.conversations.CreateConversation(request)).conversation.conversation_id

    async def open_windows(self, wa_user: str, ig_user: str | None = None) -> None:
        """They wrote to the business just now: their 24-hour reply windows are open."""
        await self.emulator("whatsapp", "POST", "inbound", {"phone_number_id": self.phone_number_id, "from": wa_user, "type": "text", "text": "hi"})
        if ig_user:
            await self.emulator("instagram", "POST", "inbound", {"ig_user_id": self.ig_account, "from": ig_user, "text": "hi"})


@pytest.fixture
async def client(platform):
    client = Client(platform.raw)
    yield client
    await client.close()


def unique_ids() -> tuple[str, str, int]:
    """A fresh WhatsApp wa_id, Instagram IGSID and Telegram supergroup id."""
    now = int(time.time() * 1000)
    return str(now), str(now + 1), -(10**12 + now % 10**9)


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


async def eventually(probe, timeout: float = 60):
    async with asyncio.timeout(timeout):
        while not (found := await probe()):
            await asyncio.sleep(0.2)
    return found


async def everyone_group(client: Client) -> tuple[dict, tuple[str, str, int]]:
    """A group bound to a fresh Telegram group, with Ana (internal, the sender), Bia on WhatsApp
    and Duda on Instagram (both with open reply windows); and their platform ids."""
    wa_user, ig_user, group_chat = unique_ids()
    agent = await client.user("Ana")
    members = [agent, await client.user("Bia", C.CHANNEL_WHATSAPP, wa_user), await client.user("Duda", C.CHANNEL_INSTAGRAM, ig_user)]
    await client.open_windows(wa_user, ig_user)
    conversation = {"conversation_id": await client.conversation(members, group_chat), "sender_user_id": agent}
    return conversation, (wa_user, ig_user, group_chat)


async def test_an_image_reaches_every_platform_through_its_media_call(client):
    conversation, (wa_user, ig_user, group_chat) = await everyone_group(client)
    agent = conversation["sender_user_id"]
    image = png()
    file = await clean_upload(client.files, client.http, image, "chart.png", "application/octet-stream", agent)
    assert file.detected_content_type == "image/png" and file.owner_user_id == agent

    content = message_pb2.MessageContent(attachments=[message_pb2.Attachment(file_id=file.file_id, caption="the chart")])
    message_id = await send_until_accepted(client.messages, conversation, "", content=content)
    [message] = await settled(client.messages, [message_id], final=FINAL)
    assert {d.recipient.channel: d.status for d in message.deliveries}.keys() == {C.CHANNEL_TELEGRAM, C.CHANNEL_WHATSAPP, C.CHANNEL_INSTAGRAM}
    assert {d.status for d in message.deliveries} <= WENT_OUT, message.deliveries
    # The stored message names the file as the file service knows it, and no URL: clients ask
    # GetDownloadUrl, which checks the file again.
    [stored] = message.content.attachments
    assert (stored.file_id, stored.filename, stored.content_type, stored.size_bytes, stored.download_url) == (
        file.file_id, "chart.png", "image/png", len(image), "")

    # WhatsApp: an image message whose link WhatsApp fetched, our exact bytes.
    [whatsapp] = [m for m in (await client.emulator("whatsapp", "GET", f"messages?to={wa_user}"))["messages"] if m["body"]["type"] == "image"]
    assert whatsapp["body"]["image"]["caption"] == "Ana: the chart"
    fetched = await eventually(lambda: _whatsapp_media(client, whatsapp["wamid"]))
    assert fetched["sha256"] == b64sha(image)
    # Telegram: sendPhoto into the group, the bytes uploaded (a private S3 URL is not reachable
    # from Telegram's servers).
    sent = (await client.emulator("telegram", "GET", "messages", params={"chat_id": str(group_chat), "limit": "1000"}))["messages"]
    [photo] = [m for m in sent if m["method"].lower() == "sendphoto"]
    assert photo["message"]["caption"] == "Ana: the chart" and photo["media"]["sha256"] == hashlib.sha256(image).hexdigest()
    # Instagram: an image attachment by URL, which Instagram fetched.
    [instagram] = [m for m in (await client.emulator("instagram", "GET", "messages"))["messages"]
                   if m["body"]["recipient"]["id"] == ig_user and "attachment" in m["body"]["message"]]
    assert instagram["body"]["message"]["attachment"]["type"] == "image"
    fetch = await eventually(lambda: _instagram_fetch(client, instagram["mid"]))
    assert fetch["sha256"] == b64sha(image)


async def _whatsapp_media(client: Client, wamid: str) -> dict | None:
    found = [m for m in (await client.emulator("whatsapp", "GET", "messages"))["messages"] if m["wamid"] == wamid]
    return (found[0].get("media") or None) if found else None


async def _instagram_fetch(client: Client, mid: str) -> dict | None:
    found = [m for m in (await client.emulator("instagram", "GET", "messages"))["messages"] if m["mid"] == mid]
    return (found[0].get("attachment_fetch") or None) if found else None


async def test_an_image_over_whatsapps_limit_fails_for_the_whatsapp_member_only(client):
    conversation, (wa_user, _, _) = await everyone_group(client)
    agent = conversation["sender_user_id"]
    big = png(1400, 1400, noise=True)  # about 5.9 MB: over WhatsApp's 5 MB, under Telegram's 10 MB and Instagram's 8 MB
    assert 5 * MiB < len(big) < 8 * MiB
    file = await clean_upload(client.files, client.http, big, "photo.png", "image/png", agent)

    content = message_pb2.MessageContent(attachments=[message_pb2.Attachment(file_id=file.file_id)])
    message_id = await send_until_accepted(client.messages, conversation, "", content=content)
    [message] = await settled(client.messages, [message_id], final=FINAL)
    deliveries = {d.recipient.channel: d for d in message.deliveries}
    whatsapp = deliveries.pop(C.CHANNEL_WHATSAPP)
    assert whatsapp.status == S.DELIVERY_STATUS_FAILED
    assert f"photo.png is {len(big)} bytes; WhatsApp accepts image files up to {5 * MiB} bytes" in whatsapp.history[-1].reason
    # Refused before WhatsApp was called, and not parked for a replay that cannot help.
    assert not [m for m in (await client.emulator("whatsapp", "GET", f"messages?to={wa_user}"))["messages"] if m["body"]["type"] == "image"]
    assert S.DELIVERY_STATUS_DEAD_LETTERED not in {change.status for change in whatsapp.history}
    assert {d.status for d in deliveries.values()} <= WENT_OUT, deliveries


async def test_a_document_over_whatsapps_limit_fails_for_the_whatsapp_recipient_only(client):
    wa_user, _, _ = unique_ids()
    agent, colleague = await client.user("Ana"), await client.user("Caio")
    customer = await client.user("Bia", C.CHANNEL_WHATSAPP, wa_user)
    await client.open_windows(wa_user)
    conversation = {"conversation_id": await client.conversation([agent, colleague, customer]), "sender_user_id": agent}
    document = os.urandom(100 * MiB + 1)  # WhatsApp takes documents up to 100 MB
    file = await clean_upload(client.files, client.http, document, "dump.bin", "application/octet-stream", agent)

    content = message_pb2.MessageContent(text="the dump", attachments=[message_pb2.Attachment(file_id=file.file_id)])
    message_id = await send_until_accepted(client.messages, conversation, "", content=content)
    [message] = await settled(client.messages, [message_id], final=FINAL)
    deliveries = {d.recipient.channel: d for d in message.deliveries}
    assert deliveries[C.CHANNEL_WHATSAPP].status == S.DELIVERY_STATUS_FAILED
    assert "WhatsApp accepts document files up to 104857600 bytes" in deliveries[C.CHANNEL_WHATSAPP].history[-1].reason
    assert deliveries[C.CHANNEL_INTERNAL].status == S.DELIVERY_STATUS_SENT
    # Nothing of it reached WhatsApp, not even the text: the message is refused whole.
    assert not [m for m in (await client.emulator("whatsapp", "GET", f"messages?to={wa_user}"))["messages"] if "the dump" in str(m["body"])]


async def test_send_message_refuses_files_that_are_missing_unclean_unfinished_or_someone_elses(client):
    agent, other = await client.user("Ana"), await client.user("Eva")
    conversation = await client.conversation([agent, other])

    async def send(file_id: str) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.messages.SendMessage(messaging_requests.SendMessageRequest(
                request_id=str(uuid.uuid4()), conversation_id=conversation, sender_user_id=agent,
                content=message_pb2.MessageContent(attachments=[message_pb2.Attachment(file_id=file_id)])))
        return refused.value

    error = await send("not-a-uuid")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "content.attachments[0].file_id" in error.details()
    missing = str(uuid.uuid4())
    error = await send(missing)
    assert error.code() == grpc.StatusCode.NOT_FOUND and missing in error.details()

    theirs = await clean_upload(client.files, client.http, b"their notes\n", "notes.txt", "text/plain", other)
    error = await send(theirs.file_id)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "does not belong" in error.details()

    unfinished = await upload(client.files, client.http, b"half\n", "half.txt", "text/plain", agent, complete=False)
    error = await send(unfinished)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "UPLOADING" in error.details()

    infected = await settled_file(client.files, await upload(client.files, client.http, EICAR, "eicar.com", "text/plain", agent))
    assert infected.state == F.FILE_STATE_QUARANTINED and "Eicar" in infected.failure_reason
    error = await send(infected.file_id)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "QUARANTINED" in error.details()
    with pytest.raises(grpc.aio.AioRpcError) as download:
        await client.files.GetDownloadUrl(file_requests.GetDownloadUrlRequest(file_id=infected.file_id))
    assert download.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # None of it left a message behind.
    history = await client.messages.ListMessages(messaging_requests.ListMessagesRequest(conversation_id=conversation))
    assert not history.messages


async def test_inbound_whatsapp_media_ends_up_in_s3_and_in_the_messages_attachments(client):
    wa_user, _, _ = unique_ids()
    image = png(32, 32)
    await client.emulator("whatsapp", "POST", "inbound", {
        "phone_number_id": client.phone_number_id, "from": wa_user, "type": "image",
        "media": {"bytes_b64": base64.b64encode(image).decode(), "mime_type": "image/png", "caption": "look"}})
    binding = conversation_pb2.PlatformBinding(channel=C.CHANNEL_WHATSAPP, account_id=client.phone_number_id, external_group_id=wa_user)

    async def stored_message():
        found = await client.conversations.ListConversations(conversation_requests.ListConversationsRequest(platform_binding=binding))
        if not found.conversations:
            return None
        history = await client.messages.ListMessages(messaging_requests.ListMessagesRequest(
            conversation_id=found.conversations[0].conversation_id))
        return history.messages[0] if history.messages else None

    message = await eventually(stored_message)
    [attachment] = message.content.attachments
    assert attachment.caption == "look" and attachment.size_bytes == len(image)
    file = await settled_file(client.files, attachment.file_id)
    assert (file.state, file.sha256, file.detected_content_type) == (F.FILE_STATE_CLEAN, hashlib.sha256(image).hexdigest(), "image/png")
    # The bytes are in our S3, served by a presigned URL.
    url = await client.files.GetDownloadUrl(file_requests.GetDownloadUrlRequest(file_id=file.file_id))
    async with client.http.get(url.url) as response:
        assert response.status == 200 and await response.read() == image
