"""WhatsApp Cloud and Instagram on the real local platform (platformctl on free ports):
API -> Kafka -> router -> connector -> emulator, and back in through the connectors'
signed webhooks, with the emulators' real wire shapes, limits and faults."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import aiohttp
import grpc
import pytest
from chat4all.channel.v1 import channel_pb2
from chat4all.connector.v1 import request_response_pb2 as connector_requests
from chat4all.connector.v1 import service_pb2_grpc as connector_grpc
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.conversations.v1 import request_response_pb2 as conversation_requests
from chat4all.conversations.v1 import service_pb2_grpc as conversation_grpc
from chat4all.messaging.v1 import message_pb2
from chat4all.messaging.v1 import request_response_pb2 as messaging_requests
from chat4all.messaging.v1 import service_pb2_grpc as messaging_grpc
from chat4all.users.v1 import service_pb2_grpc as user_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.support.platform import Platform, running_platform
from tests.support.scenarios import platform_conversations, send_until_accepted, settled

S = message_pb2.DeliveryStatus
WHATSAPP, INSTAGRAM = channel_pb2.Channel.CHANNEL_WHATSAPP, channel_pb2.Channel.CHANNEL_INSTAGRAM
WENT_OUT = frozenset({S.DELIVERY_STATUS_SENT, S.DELIVERY_STATUS_DELIVERED, S.DELIVERY_STATUS_READ})
FINAL = WENT_OUT | {S.DELIVERY_STATUS_DEAD_LETTERED, S.DELIVERY_STATUS_FAILED}


def meta_only(raw: dict[str, Any]) -> None:
    raw["kafka"]["storage"] = "memory"  # fast; these tests do not restart the broker
    apps = raw["apps"]
    for name in ("telegram", "telegram_emulator"):  # not needed here: two processes fewer
        del apps[name]
    phone, account = apps["whatsapp"]["env"]["C4A_WHATSAPP_PHONE_NUMBER_ID"], apps["instagram"]["env"]["C4A_INSTAGRAM_ACCOUNT_ID"]
    apps["router"]["env"]["C4A_CONNECTORS"] = (
        f"whatsapp=${{host}}:${{whatsapp_grpc_port}}/{phone},instagram=${{host}}:${{instagram_grpc_port}}/{account}"
    )
    apps["router"]["env"]["C4A_BACKOFF_BASE_SECONDS"] = "0.2"
    for app in apps.values():
        # Several platforms may share the machine's PostgreSQL (100 connections) at once.
        app.setdefault("env", {})["C4A_POSTGRES_POOL_MAX"] = "4"
    # Files go to WhatsApp by media id, uploaded from our S3 (link delivery, the default, is
    # covered by the connector's own tests: WhatsApp fetches the link itself).
    apps["whatsapp"]["env"]["C4A_WHATSAPP_MEDIA_DELIVERY"] = "upload"
    for name in ("whatsapp", "instagram"):
        # An outage test should not wait out a production-length open circuit.
        apps[name]["env"].update({"C4A_CONNECTOR_BREAKER_OPEN_SECONDS": "1", "C4A_CONNECTOR_BREAKER_MAX_OPEN_SECONDS": "2"})


class Client:
    def __init__(self, raw: dict[str, Any]) -> None:
        apps = raw["apps"]
        self.apps = apps
        self.channels = {name: grpc.aio.insecure_channel(f"127.0.0.1:{apps[name]['grpc_port']}") for name in ("messaging", "users", "conversations")}
        self.messages = messaging_grpc.MessageServiceStub(self.channels["messaging"])
        self.users = user_grpc.UserServiceStub(self.channels["users"])
        self.conversations = conversation_grpc.ConversationServiceStub(self.channels["conversations"])
        self.phone_number_id = apps["whatsapp"]["env"]["C4A_WHATSAPP_PHONE_NUMBER_ID"]
        self.ig_account = apps["instagram"]["env"]["C4A_INSTAGRAM_ACCOUNT_ID"]
        self.http = aiohttp.ClientSession()

    def webhook(self, name: str) -> str:
        return f"http://127.0.0.1:{self.apps[name]['webhook_port']}/{name}/webhook"

    async def control(self, emulator: str, method: str, path: str, body: Any = None) -> Any:
        url = f"http://127.0.0.1:{self.apps[emulator + '_emulator']['http_port']}/_emulator/{path}"
        async with self.http.request(method, url, json=body) as response:
            assert response.status < 300, await response.text()
            return await response.json()

    async def metric(self, connector: str, name: str, **labels: str) -> float:
        async with self.http.get(f"http://127.0.0.1:{self.apps[connector]['metrics_port']}/metrics") as response:
            text = await response.text()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    async def sent_to(self, recipient: str) -> list[dict]:
        """What the WhatsApp emulator accepted for `recipient`, in arrival order."""
        return (await self.control("whatsapp", "GET", f"messages?to={recipient}"))["messages"]

    async def close(self) -> None:
        await self.http.close()
        for channel in self.channels.values():
            await channel.close()


@pytest.fixture(scope="module")
def platform():
    with running_platform(meta_only) as handle:
        handle.check("up", timeout=300)
        yield handle


@pytest.fixture
async def client(platform):
    client = Client(platform.raw)
    for emulator in ("whatsapp", "instagram"):
        await client.control(emulator, "DELETE", "faults")
        await client.control(emulator, "DELETE", "status-policy")
        await client.control(emulator, "DELETE", "limits")
    yield client
    await client.close()


def template(*parameters: str) -> message_pb2.MessageContent:
    return message_pb2.MessageContent(template=message_pb2.Template(name="order_update", language="en_US", parameters=parameters))


def template_text(sent: dict) -> str:
    return sent["body"]["template"]["components"][0]["parameters"][0]["text"]


def signed(body: bytes, secret: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


async def bound_conversation(client: Client, channel: int, account: str, chat: str) -> str:
    binding = conversation_pb2.PlatformBinding(channel=channel, account_id=account, external_group_id=chat)
    async with asyncio.timeout(30):
        while not (found := await client.conversations.ListConversations(
                conversation_requests.ListConversationsRequest(platform_binding=binding))).conversations:
            await asyncio.sleep(0.2)
    return found.conversations[0].conversation_id


async def history_texts(client: Client, conversation_id: str) -> list[str]:
    listed = await client.messages.ListMessages(messaging_requests.ListMessagesRequest(conversation_id=conversation_id))
    return [m.content.text for m in listed.messages]


# Inbound ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["whatsapp", "instagram"])
async def test_inbound_reaches_history_and_streams_once_and_unsigned_webhooks_store_nothing(client, name):
    user = str(int(time.time() * 1000))
    if name == "whatsapp":
        channel, account = WHATSAPP, client.phone_number_id
        inbound = lambda text, **more: {"phone_number_id": account, "from": user, "name": "Ana", "type": "text", "text": text, **more}  # noqa: E731
    else:
        channel, account = INSTAGRAM, client.ig_account
        inbound = lambda text, **more: {"ig_user_id": account, "from": user, "text": text, **more}  # noqa: E731
    first = await client.control(name, "POST", "inbound", inbound("oi", duplicate=1))  # Meta redelivers
    conversation_id = await bound_conversation(client, channel, account, user)
    # The conversation is made before its first message is stored: follow on from that message.
    async with asyncio.timeout(30):
        while await history_texts(client, conversation_id) != ["oi"]:
            await asyncio.sleep(0.1)
    cursor = (await client.messages.ListMessages(messaging_requests.ListMessagesRequest(conversation_id=conversation_id))).events_cursor

    stream = client.messages.StreamConversationEvents(
        messaging_requests.StreamConversationEventsRequest(conversation_id=conversation_id, after_cursor=cursor))
    await client.control(name, "POST", "inbound", inbound("tudo bem?"))
    async with asyncio.timeout(30):
        async for response in stream:
            if response.event.HasField("message_created"):
                assert response.event.message_created.content.text == "tudo bem?"
                assert response.event.message_created.origin.inbound.channel == channel
                break
    stream.cancel()

    # The same webhook body with a new message id: only the signature makes it Meta's.
    forged = json.loads(first["raw"])
    if name == "whatsapp":
        message = forged["entry"][0]["changes"][0]["value"]["messages"][0]
        message["id"], message["text"]["body"] = f"wamid.{uuid.uuid4().hex}", "forged"
    else:
        message = forged["entry"][0]["messaging"][0]["message"]
        message["mid"], message["text"] = f"m_{uuid.uuid4().hex}", "forged"
    body = json.dumps(forged).encode()
    for headers, status in (({"Content-Type": "application/json"}, 401), (signed(body, "not-the-app-secret"), 403)):
        async with client.http.post(client.webhook(name), data=body, headers=headers) as response:
            assert response.status == status
    secret = client.apps[name]["env"][f"C4A_{name.upper()}_APP_SECRET"]
    verify = client.apps[name]["env"][f"C4A_{name.upper()}_VERIFY_TOKEN"]
    for token, status, answer in (("wrong", 403, None), (verify, 200, "1158201444")):
        query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"}
        async with client.http.get(client.webhook(name), params=query) as response:
            assert response.status == status
            if answer:
                assert await response.text() == answer
    # Signed, the same body is taken: the refusals above were about the signature alone.
    async with client.http.post(client.webhook(name), data=body, headers=signed(body, secret)) as response:
        assert response.status == 200
    async with asyncio.timeout(30):
        while (texts := await history_texts(client, conversation_id)) != ["forged", "tudo bem?", "oi"]:
            assert len(texts) <= 3, texts  # the duplicate "oi" and the unsigned forgeries stored nothing
            await asyncio.sleep(0.2)


# Statuses -----------------------------------------------------------------------------------


async def test_duplicated_and_reordered_statuses_end_read_with_each_status_once(client):
    await client.control("whatsapp", "PUT", "status-policy", {"auto": []})  # this test sends them
    [conversation] = await platform_conversations(client.users, client.conversations, 1, WHATSAPP)
    message_id = await send_until_accepted(client.messages, conversation, "", content=template("status"))
    [message] = await settled(client.messages, [message_id], final=FINAL)
    assert message.deliveries[0].status == S.DELIVERY_STATUS_SENT
    [sent] = await client.sent_to(conversation["chat_id"])
    # Read before delivered, each twice (Meta redelivers), then a late "sent".
    await client.control("whatsapp", "POST", "statuses", {"id": sent["wamid"], "statuses": ["read", "delivered"], "duplicate": 1})
    await client.control("whatsapp", "POST", "statuses", {"id": sent["wamid"], "statuses": ["sent"]})

    async with asyncio.timeout(30):
        while True:
            [message] = await settled(client.messages, [message_id], final=FINAL)
            statuses = [c.status for c in message.deliveries[0].history]
            if S.DELIVERY_STATUS_DELIVERED in statuses:
                break
            await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)  # a wrongly kept duplicate or late "sent" would show by now
    [message] = await settled(client.messages, [message_id], final=FINAL)
    delivery = message.deliveries[0]
    assert delivery.status == S.DELIVERY_STATUS_READ  # read implies delivered; nothing moves it back
    statuses = [c.status for c in delivery.history]
    after_sent = statuses[statuses.index(S.DELIVERY_STATUS_SENT):]
    assert after_sent == [S.DELIVERY_STATUS_SENT, S.DELIVERY_STATUS_READ, S.DELIVERY_STATUS_DELIVERED]
    assert sent["wamid"] in delivery.platform_message_ids


async def test_a_131047_failure_reaches_the_sender_as_failed_with_the_platforms_reason(client):
    [conversation] = await platform_conversations(client.users, client.conversations, 1, WHATSAPP)
    user = conversation["chat_id"]
    # The user wrote (the connector's window opens) ...
    await client.control("whatsapp", "POST", "inbound", {"phone_number_id": client.phone_number_id, "from": user, "type": "text", "text": "hi"})
    await bound_conversation(client, WHATSAPP, client.phone_number_id, user)
    # ... but WhatsApp's own clock says that was 25 hours ago: it accepts, then fails the send.
    await client.control("whatsapp", "PUT", f"contacts/{client.phone_number_id}/{user}", {"last_inbound_time": int(time.time()) - 25 * 3600})
    cursor = (await client.messages.ListMessages(
        messaging_requests.ListMessagesRequest(conversation_id=conversation["conversation_id"]))).events_cursor
    stream = client.messages.StreamConversationEvents(
        messaging_requests.StreamConversationEventsRequest(conversation_id=conversation["conversation_id"], after_cursor=cursor))
    message_id = await send_until_accepted(client.messages, conversation, "are you there?")

    async with asyncio.timeout(30):
        async for response in stream:
            update = response.event.delivery_status_changed
            if update.message_id == message_id and update.current_status == S.DELIVERY_STATUS_FAILED:
                break
    stream.cancel()
    [message] = await settled(client.messages, [message_id], final=frozenset({S.DELIVERY_STATUS_FAILED}))
    failure = message.deliveries[0].history[-1]
    assert failure.status == S.DELIVERY_STATUS_FAILED
    assert failure.platform_error_code == "131047"
    assert "24 hours" in failure.reason
    [sent] = await client.sent_to(user)
    assert sent["outcome"] == "failed" and sent["wamid"] in message.deliveries[0].platform_message_ids


async def test_free_form_outside_the_window_is_refused_without_calling_whatsapp_and_a_template_goes(client):
    [conversation] = await platform_conversations(client.users, client.conversations, 1, WHATSAPP)
    refused = await send_until_accepted(client.messages, conversation, "hello out of the blue")
    [message] = await settled(client.messages, [refused], final=FINAL)
    delivery = message.deliveries[0]
    assert delivery.status == S.DELIVERY_STATUS_DEAD_LETTERED  # permanent: no retries
    assert delivery.history[-1].platform_error_code == "FAILED_PRECONDITION"
    assert "window" in delivery.history[-1].reason
    assert [c.attempt for c in delivery.history if c.status == S.DELIVERY_STATUS_DISPATCHED] == [1]
    assert await client.sent_to(conversation["chat_id"]) == []
    requests = (await client.control("whatsapp", "GET", "requests?path=/messages"))["requests"]
    assert not [r for r in requests if (r.get("body") or {}).get("to") == conversation["chat_id"]]

    allowed = await send_until_accepted(client.messages, conversation, "", content=template("welcome"))
    [message] = await settled(client.messages, [allowed], final=FINAL)
    assert message.deliveries[0].status in WENT_OUT
    assert [template_text(s) for s in await client.sent_to(conversation["chat_id"])] == ["welcome"]


# Limits and outages -------------------------------------------------------------------------


async def test_500_messages_from_one_number_keep_to_80_per_second_and_none_fails(client):
    await client.control("whatsapp", "PUT", "status-policy", {"auto": []})  # only the sends matter here
    conversations = await platform_conversations(client.users, client.conversations, 50, WHATSAPP)
    tag = f"rate-{uuid.uuid4().hex[:6]}"

    async def lane(index: int, conversation: dict) -> list[str]:
        return [await send_until_accepted(client.messages, conversation, "", content=template(f"{tag} {index} {i}")) for i in range(10)]

    ids = [m for lane_ids in await asyncio.gather(*(lane(i, c) for i, c in enumerate(conversations))) for m in lane_ids]
    messages = await settled(client.messages, ids, timeout=180, final=FINAL)
    assert all(m.deliveries[0].status == S.DELIVERY_STATUS_SENT for m in messages)  # none failed for the limit
    # The limit held messages back (the router waited the connector's retry-after) ...
    deferred = [c for m in messages for c in m.deliveries[0].history
                if c.status == S.DELIVERY_STATUS_RETRYING and c.platform_error_code == "RESOURCE_EXHAUSTED"]
    assert deferred and all("send limit is full" in c.reason for c in deferred)
    assert all(
        sum(1 for c in m.deliveries[0].history if c.status == S.DELIVERY_STATUS_DISPATCHED and c.attempt > 1) == 0 for m in messages
    )  # a deferral is not an attempt
    # ... so WhatsApp saw at most 80/s (plus the configured burst of 10), never throttled us,
    # and 500 sends took at least (500 - burst) / 80 s.
    requests = [r for r in (await client.control("whatsapp", "GET", f"requests?phone_number_id={client.phone_number_id}&path=/messages"))["requests"]
                if tag in json.dumps(r.get("body"))]
    assert len(requests) == 500 and all(r["status"] == 200 for r in requests)
    times = sorted(r["received_at"] for r in requests)
    busiest = max(sum(1 for t in times[i:] if t - start < 1.0) for i, start in enumerate(times))
    assert busiest <= 80 + 10 + 5, busiest  # GCRA admits 91 in any second; a little arrival jitter
    assert times[-1] - times[0] >= (500 - 11) / 80 - 0.3
    for conversation_index, conversation in enumerate(conversations):  # and each conversation in order
        texts = [template_text(s) for s in await client.sent_to(conversation["chat_id"])]
        assert texts == [f"{tag} {conversation_index} {i}" for i in range(10)]


async def test_an_emulator_429_with_a_retry_time_is_waited_out(client):
    [conversation] = await platform_conversations(client.users, client.conversations, 1, WHATSAPP)
    await client.control("whatsapp", "PUT", "faults", {"fail_next_429": 1, "retry_after": 2})
    message_id = await send_until_accepted(client.messages, conversation, "", content=template("after the 429"))
    [message] = await settled(client.messages, [message_id], final=FINAL)
    history = list(message.deliveries[0].history)
    assert message.deliveries[0].status in WENT_OUT
    [throttled] = [c for c in history if c.status == S.DELIVERY_STATUS_RETRYING]
    assert throttled.platform_error_code == "RESOURCE_EXHAUSTED"
    assert throttled.next_attempt_time.ToNanoseconds() - throttled.change_time.ToNanoseconds() >= 1_900_000_000
    following = history[history.index(throttled) + 1]
    assert following.change_time.ToNanoseconds() >= throttled.next_attempt_time.ToNanoseconds() - 50_000_000


async def test_with_whatsapp_down_the_breaker_opens_nothing_is_dead_lettered_and_all_arrive_in_order(client):
    await client.control("whatsapp", "PUT", "status-policy", {"auto": []})
    first, second = await platform_conversations(client.users, client.conversations, 2, WHATSAPP)
    tag = f"down-{uuid.uuid4().hex[:6]}"
    await client.control("whatsapp", "PUT", "faults", {"down": True})
    fast_failures = await client.metric("whatsapp", "chat4all_connector_sends_total", outcome="circuit_open")
    ids = [await send_until_accepted(client.messages, first, "", content=template(f"{tag} {i}")) for i in range(10)]
    ids.append(await send_until_accepted(client.messages, second, "", content=template(f"{tag} other")))

    async with asyncio.timeout(30):
        while await client.metric("whatsapp", "chat4all_connector_circuit_state", account=client.phone_number_id) != 1:
            await asyncio.sleep(0.1)
    await asyncio.sleep(6)  # an outage of some seconds: without the breaker, three attempts each would end it
    refused_while_down = (await client.control("whatsapp", "GET", "requests?path=/messages"))["requests"]
    failing = [r for r in refused_while_down if tag in json.dumps(r.get("body")) and r["status"] == 503]
    # Fast failures: the breaker answered most sends; WhatsApp saw the first failures and a few probes.
    assert await client.metric("whatsapp", "chat4all_connector_sends_total", outcome="circuit_open") > fast_failures
    assert len(failing) <= 3 + 6, len(failing)
    # Waiting: the head of each conversation is retried, nothing went out, nothing is dead-lettered
    # (the messages behind a head wait their turn, unstored, in the conversation's lane).
    heads = await settled(client.messages, [ids[0], ids[-1]], final=frozenset(S.values()))
    assert not [m for m in heads if m.deliveries[0].status in FINAL]
    assert await client.sent_to(first["chat_id"]) == await client.sent_to(second["chat_id"]) == []
    listed = await client.messages.ListDeadLetters(messaging_requests.ListDeadLettersRequest(page_size=1000))
    assert not set(ids) & {d.message_id for d in listed.dead_letters}

    await client.control("whatsapp", "DELETE", "faults")
    messages = await settled(client.messages, ids, timeout=60, final=FINAL)
    assert all(m.deliveries[0].status == S.DELIVERY_STATUS_SENT for m in messages)
    assert [template_text(s) for s in await client.sent_to(first["chat_id"])] == [f"{tag} {i}" for i in range(10)]
    assert [template_text(s) for s in await client.sent_to(second["chat_id"])] == [f"{tag} other"]
    listed = await client.messages.ListDeadLetters(messaging_requests.ListDeadLettersRequest(page_size=1000))
    assert not set(ids) & {d.message_id for d in listed.dead_letters}
    assert await client.metric("whatsapp", "chat4all_connector_circuit_state", account=client.phone_number_id) == 0


async def test_an_instagram_send_is_read_and_its_echo_is_not_taken_for_a_new_message(client):
    await client.control("instagram", "PUT", "status-policy", {"echo": True, "auto_read": False})
    [conversation] = await platform_conversations(client.users, client.conversations, 1, INSTAGRAM)
    user = conversation["chat_id"]
    await client.control("instagram", "POST", "inbound", {"ig_user_id": client.ig_account, "from": user, "text": "hey"})
    await bound_conversation(client, INSTAGRAM, client.ig_account, user)
    message_id = await send_until_accepted(client.messages, conversation, "hello from chat4all")
    [message] = await settled(client.messages, [message_id], final=FINAL)
    assert message.deliveries[0].status == S.DELIVERY_STATUS_SENT
    [sent] = (await client.control("instagram", "GET", f"messages?recipient_id={user}"))["messages"]
    assert sent["body"]["message"] == {"text": "hello from chat4all"}
    assert sent["mid"] in message.deliveries[0].platform_message_ids
    await client.control("instagram", "POST", "reads", {"mid": sent["mid"]})
    [message] = await settled(client.messages, [message_id], final=frozenset({S.DELIVERY_STATUS_READ}), timeout=30)
    # Our own send came back as an echo: it is not a new inbound message.
    bound = await bound_conversation(client, INSTAGRAM, client.ig_account, user)
    await asyncio.sleep(1)
    assert await history_texts(client, bound) == ["hey"]


async def test_one_file_to_two_users_is_uploaded_to_whatsapp_once_and_sent_by_its_media_id(client, platform: Platform):
    # The file in our S3, as the file service keeps it, behind a short-lived download URL.
    data = b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes * 4096
    file_id, s3 = str(uuid.uuid4()), platform.s3()
    await asyncio.to_thread(s3.put_object, Bucket="chat4all-files", Key=f"test/{file_id}", Body=data, ContentType="image/png")
    url = await asyncio.to_thread(
        s3.generate_presigned_url, "get_object", Params={"Bucket": "chat4all-files", "Key": f"test/{file_id}"}, ExpiresIn=600
    )
    attachment = message_pb2.Attachment(file_id=file_id, caption="the receipt", filename="receipt.png",
                                        content_type="image/png", size_bytes=len(data), download_url=url)
    users = [str(int(time.time() * 1000) + i) for i in range(2)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{client.apps['whatsapp']['grpc_port']}") as channel:
        connector = connector_grpc.MessageConnectorStub(channel)
        for user in users:
            await client.control("whatsapp", "POST", "inbound", {"phone_number_id": client.phone_number_id, "from": user, "type": "text", "text": "send it"})
            await bound_conversation(client, WHATSAPP, client.phone_number_id, user)  # the window is open
            await connector.SendMessage(connector_requests.SendMessageRequest(
                message_id=str(uuid.uuid4()), conversation_id=str(uuid.uuid4()), account_id=client.phone_number_id, attempt=1,
                recipient=message_pb2.Recipient(channel=WHATSAPP, external_id=user),
                content=message_pb2.MessageContent(attachments=[attachment]),
            ))
    uploads = (await client.control("whatsapp", "GET", f"requests?phone_number_id={client.phone_number_id}&path=/media"))["requests"]
    assert len([u for u in uploads if u["status"] == 200]) == 1  # once for both users
    sent = [(await client.sent_to(user))[0]["body"] for user in users]
    media_id = sent[0]["image"]["id"]
    for user, body in zip(users, sent):
        assert body == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": user,
                        "type": "image", "image": {"id": media_id, "caption": "the receipt"}}
    # WhatsApp holds exactly our bytes under that id.
    graph = f"http://127.0.0.1:{client.apps['whatsapp_emulator']['http_port']}/v21.0/{media_id}"
    token = client.apps["whatsapp"]["env"]["C4A_WHATSAPP_ACCESS_TOKEN"]
    async with client.http.get(graph, headers={"Authorization": f"Bearer {token}"}) as response:
        described = await response.json()
    assert described["file_size"] == len(data) and described["mime_type"] == "image/png"
    assert described["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
