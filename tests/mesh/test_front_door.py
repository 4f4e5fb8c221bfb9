"""The front door on the real local platform (platformctl on free ports): users, conversations,
messages, history and files through Envoy as REST and as gRPC; grpcurl through it; what it
refuses (unknown paths, internal RPCs, big bodies, calls without a key); the platforms' webhooks
through it to the connectors, which accept only signed requests; and its access log."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import requests
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.conversations.v1 import request_response_pb2 as conversation_requests
from chat4all.conversations.v1 import service_pb2_grpc as conversation_grpc
from chat4all.files.v1 import message_pb2 as file_pb2
from chat4all.files.v1 import request_response_pb2 as file_requests
from chat4all.files.v1 import service_pb2_grpc as file_grpc
from chat4all.messaging.v1 import message_pb2
from chat4all.messaging.v1 import request_response_pb2 as messaging_requests
from chat4all.messaging.v1 import service_pb2_grpc as messaging_grpc
from chat4all.users.v1 import request_response_pb2 as user_requests
from chat4all.users.v1 import service_pb2_grpc as user_grpc

from scripts.platform import binaries
from tests.mesh.keys import api_key, auth_app
from tests.support.platform import ROOT, Platform, all_connectors_fast, running_platform

CLIENT_ID = "front-door-test"
MiB = 1024 * 1024
PUBLIC = ["chat4all.messaging.v1.MessageService", "chat4all.conversations.v1.ConversationService",
          "chat4all.users.v1.UserService", "chat4all.files.v1.FileService", "chat4all.webhooks.v1.WebhookService"]


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    def customize(raw: dict[str, Any]) -> None:
        all_connectors_fast(raw)
        raw["envoy"]["access_log"] = True

    with running_platform(customize) as handle:
        handle.check("up", timeout=300)
        yield handle


class Door:
    """A client of the front door, with an API key when the platform checks them."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.target = f"{platform.host}:{platform.raw['envoy']['port']}"
        self.url = f"http://{self.target}"
        self.key = api_key(platform.raw, CLIENT_ID)
        self.headers = {"authorization": f"Bearer {self.key}"} if self.key else {}
        self.metadata = tuple(self.headers.items())
        self.channel = grpc.insecure_channel(self.target)
        self.users = user_grpc.UserServiceStub(self.channel)
        self.conversations = conversation_grpc.ConversationServiceStub(self.channel)
        self.messages = messaging_grpc.MessageServiceStub(self.channel)
        self.files = file_grpc.FileServiceStub(self.channel)

    def rest(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
        return requests.request(method, f"{self.url}{path}", json=body, headers={**self.headers, **(headers or {})},
                                timeout=30)

    def ok(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = self.rest(method, path, body, headers)
        assert response.status_code == 200, (method, path, response.status_code, response.text)
        return response.json()

    def envoy_log(self) -> list[dict[str, Any]]:
        text = (self.platform.var / "log" / "envoy.log").read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def logged(self, request_id: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.envoy_log() if line["request_id"] == request_id]
            if found or time.monotonic() > deadline:
                assert found, f"no access log line for {request_id}"
                return found[0]
            time.sleep(0.1)


@pytest.fixture(scope="module")
def door(platform: Platform) -> Iterator[Door]:
    door = Door(platform)
    yield door
    door.channel.close()


def new_id() -> str:
    return str(uuid.uuid4())


def eventually(probe, timeout: float = 60, interval: float = 0.2):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(interval)
    return found


def send_until_accepted(send) -> Any:  # noqa: ANN001
    """What a careful client does at start-up: retry UNAVAILABLE (Kafka not ready yet), same request_id."""
    deadline = time.monotonic() + 120
    while True:
        outcome = send()
        if outcome is not None:
            return outcome
        assert time.monotonic() < deadline, "SendMessage stayed UNAVAILABLE"
        time.sleep(0.3)


def test_users_conversations_messages_history_and_files_through_rest(door: Door) -> None:
    ana = door.ok("POST", "/v1/users", {"requestId": new_id(), "displayName": "Ana"})["user"]
    bia = door.ok("POST", "/v1/users", {"requestId": new_id(), "displayName": "Bia"})["user"]
    assert door.ok("GET", f"/v1/users/{ana['userId']}")["user"]["displayName"] == "Ana"

    created = door.ok("POST", "/v1/conversations", {
        "requestId": new_id(), "type": "CONVERSATION_TYPE_DIRECT",
        "members": [{"userId": ana["userId"]}, {"userId": bia["userId"]}]})["conversation"]
    conversation_id = created["conversationId"]
    got = door.ok("GET", f"/v1/conversations/{conversation_id}")["conversation"]
    assert {member["userId"] for member in got["members"]} == {ana["userId"], bia["userId"]}

    send = {"requestId": new_id(), "senderUserId": ana["userId"], "content": {"text": "olá pela porta da frente"}}

    def accepted() -> dict[str, Any] | None:
        response = door.rest("POST", f"/v1/conversations/{conversation_id}/messages", send)
        if response.status_code == 503:
            return None
        assert response.status_code == 200, response.text
        return response.json()

    message_id = send_until_accepted(accepted)["messageId"]
    history = eventually(lambda: [m for m in door.ok("GET", f"/v1/conversations/{conversation_id}/messages")["messages"]
                                  if m["messageId"] == message_id])
    assert history[0]["content"]["text"] == "olá pela porta da frente"

    data = b"front door"
    upload = door.ok("POST", "/v1/uploads", {
        "requestId": new_id(), "filename": "note.txt", "contentType": "text/plain", "sizeBytes": str(len(data)),
        "sha256": hashlib.sha256(data).hexdigest(), "ownerUserId": ana["userId"]})
    assert upload["partUrls"], upload  # the bytes go straight to S3, never through the front door
    file = door.ok("GET", f"/v1/files/{upload['fileId']}")["file"]
    assert (file["fileId"], file["state"]) == (upload["fileId"], "FILE_STATE_UPLOADING")


def test_the_same_through_native_grpc(door: Door) -> None:
    meta = door.metadata
    ana = door.users.CreateUser(user_requests.CreateUserRequest(request_id=new_id(), display_name="Ana"), metadata=meta, timeout=15).user
    bia = door.users.CreateUser(user_requests.CreateUserRequest(request_id=new_id(), display_name="Bia"), metadata=meta, timeout=15).user
    assert door.users.GetUser(user_requests.GetUserRequest(user_id=ana.user_id), metadata=meta, timeout=15).user.display_name == "Ana"

    conversation = door.conversations.CreateConversation(conversation_requests.CreateConversationRequest(
        request_id=new_id(), type=conversation_pb2.CONVERSATION_TYPE_DIRECT,
        members=[conversation_pb2.Member(user_id=ana.user_id), conversation_pb2.Member(user_id=bia.user_id)]),
        metadata=meta, timeout=15).conversation
    got = door.conversations.GetConversation(conversation_requests.GetConversationRequest(
        conversation_id=conversation.conversation_id), metadata=meta, timeout=15).conversation
    assert {member.user_id for member in got.members} == {ana.user_id, bia.user_id}

    request = messaging_requests.SendMessageRequest(
        request_id=new_id(), conversation_id=conversation.conversation_id, sender_user_id=ana.user_id,
        content=message_pb2.MessageContent(text="hello through the door"))

    def accepted() -> str | None:
        try:
            return door.messages.SendMessage(request, metadata=meta, timeout=15).message_id
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                return None
            raise

    message_id = send_until_accepted(accepted)
    listed = eventually(lambda: [m for m in door.messages.ListMessages(messaging_requests.ListMessagesRequest(
        conversation_id=conversation.conversation_id), metadata=meta, timeout=15).messages if m.message_id == message_id])
    assert listed[0].content.text == "hello through the door"

    data = b"through grpc"
    upload = door.files.CreateUpload(file_requests.CreateUploadRequest(
        request_id=new_id(), filename="note.txt", content_type="text/plain", size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(), owner_user_id=ana.user_id), metadata=meta, timeout=15)
    file = door.files.GetFile(file_requests.GetFileRequest(file_id=upload.file_id), metadata=meta, timeout=15).file
    assert (file.file_id, file.state) == (upload.file_id, file_pb2.FILE_STATE_UPLOADING)


def test_grpcurl_lists_and_calls_the_services_through_the_door(door: Door) -> None:
    grpcurl = [str(binaries.grpcurl()), "-plaintext", *(arg for name, value in door.headers.items()
                                                         for arg in ("-H", f"{name}: {value}"))]
    listed = subprocess.run([*grpcurl, door.target, "list"], capture_output=True, text=True, timeout=30, check=True)
    assert set(PUBLIC) <= set(listed.stdout.split()), listed.stdout
    assert "chat4all.connector.v1.MessageConnector" not in listed.stdout  # internal: not shown, not routed
    described = subprocess.run([*grpcurl, door.target, "describe", "chat4all.conversations.v1.ConversationService"],
                               capture_output=True, text=True, timeout=30, check=True).stdout
    assert "rpc GetConversation" in described and "ApplyUserMerge" not in described
    created = subprocess.run([*grpcurl, "-d", json.dumps({"request_id": new_id(), "display_name": "Caio"}), door.target,
                              "chat4all.users.v1.UserService/CreateUser"], capture_output=True, text=True, timeout=30, check=True)
    user_id = json.loads(created.stdout)["user"]["userId"]
    got = subprocess.run([*grpcurl, "-d", json.dumps({"user_id": user_id}), door.target, "chat4all.users.v1.UserService/GetUser"],
                         capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(got.stdout)["user"]["displayName"] == "Caio"


def test_unknown_paths_internal_rpcs_and_big_bodies_are_refused(door: Door) -> None:
    unknown = door.rest("GET", "/v1/no/such/thing")
    assert (unknown.status_code, unknown.headers["content-type"], unknown.json()["code"]) == (404, "application/json", 5)
    merge = "/chat4all.conversations.v1.ConversationService/ApplyUserMerge"
    with pytest.raises(grpc.RpcError) as refused:
        door.channel.unary_unary(merge)(b"", metadata=door.metadata, timeout=15)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED  # no route: internal RPCs stay inside
    assert door.rest("POST", merge, {}).status_code == 404
    big = door.rest("POST", "/v1/users", {"requestId": new_id(), "displayName": "x" * (MiB + 1)})
    assert (big.status_code, big.json()["code"]) == (413, 8)


def _signed(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_webhooks_reach_the_connectors_and_only_signed_requests_are_accepted(door: Door) -> None:
    apps = door.platform.raw["apps"]
    wa = apps["whatsapp"]["env"]
    wa_id = str(int(time.time() * 1000))
    envelope = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": wa["C4A_WHATSAPP_PHONE_NUMBER_ID"]},
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": f"wamid.door{wa_id}", "timestamp": str(int(time.time())), "type": "text",
                          "text": {"body": "oi pela porta"}}]}}]}]}).encode()
    hook = f"{door.url}/whatsapp/webhook"
    post = lambda headers: requests.post(hook, data=envelope, headers={"content-type": "application/json", **headers}, timeout=30)  # noqa: E731
    assert post({"x-hub-signature-256": _signed(wa["C4A_WHATSAPP_APP_SECRET"], envelope)}).status_code == 200
    assert post({"x-hub-signature-256": _signed("not-the-app-secret", envelope)}).status_code == 403
    assert post({}).status_code == 401
    assert requests.put(hook, data=envelope, timeout=30).status_code == 405
    handshake = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    good = requests.get(hook, params={**handshake, "hub.verify_token": wa["C4A_WHATSAPP_VERIFY_TOKEN"]}, timeout=30)
    assert (good.status_code, good.text) == (200, "1158201444")
    assert requests.get(hook, params={**handshake, "hub.verify_token": "guess"}, timeout=30).status_code == 403

    ig = apps["instagram"]["env"]
    empty = json.dumps({"object": "instagram", "entry": []}).encode()
    instagram = f"{door.url}/instagram/webhook"
    assert requests.post(instagram, data=empty, headers={"x-hub-signature-256": _signed(ig["C4A_INSTAGRAM_APP_SECRET"], empty)},
                         timeout=30).status_code == 200
    assert requests.post(instagram, data=empty, headers={"x-hub-signature-256": _signed("forged", empty)}, timeout=30).status_code == 403

    tg = apps["telegram"]["env"]
    update = json.dumps({"update_id": int(time.time()) % 10**9, "message": {
        "message_id": 1, "date": int(time.time()), "chat": {"id": 4242, "type": "private"},
        "from": {"id": 4242, "is_bot": False, "first_name": "Rita"}, "text": "oi pela porta"}}).encode()
    telegram = f"{door.url}/telegram/webhook"
    secret = {"x-telegram-bot-api-secret-token": tg["C4A_TELEGRAM_WEBHOOK_SECRET"], "content-type": "application/json"}
    assert requests.post(telegram, data=update, headers=secret, timeout=30).status_code == 200
    assert requests.post(telegram, data=update, headers={**secret, "x-telegram-bot-api-secret-token": "guess"},
                         timeout=30).status_code == 401
    assert requests.post(telegram, data=update, timeout=30).status_code == 401
    assert requests.delete(telegram, timeout=30).status_code == 405
    assert requests.post(telegram, data=b"{" + b" " * MiB + b"}", headers=secret, timeout=30).status_code == 413


def test_client_claims_never_reach_a_service_and_the_access_log_keeps_no_secrets(door: Door) -> None:
    claim = {"x-chat4all-client-id": "someone-else", "x-chat4all-scopes": "admin"}
    created = door.rest("POST", "/v1/users", {"requestId": new_id(), "displayName": "Duda"}, headers=claim)
    assert created.status_code == 200, created.text
    # The user belongs to the key's client, whatever the request claimed: the key reads it back.
    user_id = created.json()["user"]["userId"]
    assert door.rest("GET", f"/v1/users/{user_id}").status_code == 200
    line = door.logged(created.headers["x-request-id"])
    assert (line["method"], line["path"], line["route"], line["status"]) == (
        "POST", "/v1/users", "/chat4all.users.v1.UserService/CreateUser", 200)
    # What reached the service as the caller: the auth service's word, or nothing without one.
    assert line["client_id"] == (CLIENT_ID if door.key else None)

    text = (door.platform.var / "log" / "envoy.log").read_text(errors="replace")
    apps = door.platform.raw["apps"]
    secrets = [apps["whatsapp"]["env"]["C4A_WHATSAPP_VERIFY_TOKEN"], apps["telegram"]["env"]["C4A_TELEGRAM_WEBHOOK_SECRET"]]
    if door.key:
        secrets.append(door.key)
    for secret in secrets:
        assert secret not in text
    assert all(isinstance(entry["status"], int) for entry in door.envoy_log())


def test_api_keys_are_checked_at_the_door(door: Door) -> None:
    pytest.importorskip("services.auth")
    if auth_app(door.platform.raw) is None:
        pytest.skip("this platform runs no auth app")
    missing = requests.get(f"{door.url}/v1/users/u-1", timeout=30)
    assert (missing.status_code, missing.headers["content-type"], missing.json()["code"]) == (401, "application/json", 16)
    wrong = requests.get(f"{door.url}/v1/users/u-1", headers={"authorization": "Bearer c4a_0123456789abcdef.nope"}, timeout=30)
    assert (wrong.status_code, wrong.json()["code"]) == (401, 16)
    with pytest.raises(grpc.RpcError) as refused:
        door.users.GetUser(user_requests.GetUserRequest(user_id="u-1"), timeout=15)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # A client cannot make itself another client: the key's client is what the services see.
    claimed = door.rest("GET", "/v1/users/u-1", headers={"x-chat4all-client-id": "someone-else"})
    assert door.logged(claimed.headers["x-request-id"])["client_id"] == CLIENT_ID


def revoke(platform: Platform, key: str) -> None:
    """RevokeApiKey, called inside the mesh as an operator's tool would."""
    from chat4all.auth.v1 import request_response_pb2, service_pb2_grpc

    app = auth_app(platform.raw)
    key_id = key.split(".", 1)[0].removeprefix("c4a_")
    with grpc.insecure_channel(f"{platform.host}:{app['grpc_port']}") as channel:
        service_pb2_grpc.ApiKeyServiceStub(channel).RevokeApiKey(request_response_pb2.RevokeApiKeyRequest(key_id=key_id), timeout=15)


def test_a_revoked_key_is_refused_within_seconds_and_a_send_only_key_cannot_read(door: Door) -> None:
    pytest.importorskip("services.auth")
    ana = door.ok("POST", "/v1/users", {"requestId": new_id(), "displayName": "Ana"})["user"]
    conversation_id = door.ok("POST", "/v1/conversations", {
        "requestId": new_id(), "type": "CONVERSATION_TYPE_GROUP", "members": [{"userId": ana["userId"]}]})["conversation"]["conversationId"]

    sender = {"authorization": f"Bearer {api_key(door.platform.raw, CLIENT_ID, ('send',))}"}
    history = door.rest("GET", f"/v1/conversations/{conversation_id}/messages", headers=sender)
    assert (history.status_code, history.json()["code"]) == (403, 7), history.text
    assert "messages" not in history.json()
    # What it may do, it does: sending is the send scope.
    sent = door.rest("POST", f"/v1/conversations/{conversation_id}/messages", headers=sender, body={
        "requestId": new_id(), "senderUserId": ana["userId"], "content": {"text": "só envio"}})
    assert sent.status_code in (200, 503), sent.text  # 503: the broker not ready yet, never a refusal

    key = api_key(door.platform.raw, CLIENT_ID, ("read",))
    reader = {"authorization": f"Bearer {key}"}
    assert door.rest("GET", f"/v1/conversations/{conversation_id}", headers=reader).status_code == 200
    revoke(door.platform, key)
    # (A Response is falsy for a 4xx: hand back its JSON.)
    refused = eventually(lambda: (r := door.rest("GET", f"/v1/conversations/{conversation_id}", headers=reader)).status_code == 401
                         and r.json(), timeout=10)
    assert refused["code"] == 16


def test_a_client_over_its_rate_limit_gets_429_with_retry_after_and_others_go_on(door: Door) -> None:
    pytest.importorskip("services.auth")
    from chat4all.auth.v1 import message_pb2, request_response_pb2, service_pb2_grpc

    app = auth_app(door.platform.raw)
    with grpc.insecure_channel(f"{door.platform.host}:{app['grpc_port']}") as channel:
        slow = service_pb2_grpc.ApiKeyServiceStub(channel).CreateApiKey(request_response_pb2.CreateApiKeyRequest(
            request_id=new_id(), api_key=message_pb2.ApiKey(
                client_id=f"slow-{uuid.uuid4().hex[:8]}", scopes=[message_pb2.SCOPE_READ], requests_per_second=2)), timeout=15).secret
    throttled = {"authorization": f"Bearer {slow}"}
    answers = [door.rest("GET", f"/v1/users/{new_id()}", headers=throttled) for _ in range(10)]
    over = [a for a in answers if a.status_code == 429]
    assert over, [a.status_code for a in answers]
    assert int(over[0].headers["retry-after"]) >= 1 and over[0].json()["code"] == 8
    # The others' budget is their own: this client is not slowed by the throttled one.
    assert door.rest("GET", f"/v1/users/{new_id()}").status_code == 404
    # Through gRPC, the same limit is RESOURCE_EXHAUSTED.
    with pytest.raises(grpc.RpcError) as limited:
        for _ in range(10):
            door.users.GetUser(user_requests.GetUserRequest(user_id=new_id()), metadata=tuple(throttled.items()), timeout=15)
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_bounded_schemathesis_run_through_the_door_finds_no_server_error_or_schema_violation(door: Door, tmp_path) -> None:
    """Short in the default run; `C4A_SCHEMATHESIS_EXAMPLES=200` for a longer one (README)."""
    examples = os.environ.get("C4A_SCHEMATHESIS_EXAMPLES", "5")
    # A client of its own: it creates and lists keys, and must not touch the other tests' data.
    key = api_key(door.platform.raw, f"fuzz-{uuid.uuid4().hex[:8]}")
    argv = [str(ROOT / ".venv" / "bin" / "st"), "run", str(ROOT / "openapi" / "chat4all.openapi.json"),
            "--url", door.url, "--header", f"Authorization: Bearer {key}" if key else "X-No-Key: 1",
            # It learns key ids from the answers: revoking its own key would end the run early.
            "--exclude-operation-id", "ApiKeyService_RevokeApiKey",
            "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--mode", "positive", "--phases", "examples,fuzzing", "--max-examples", examples, "--seed", "7",
            "--exclude-path-regex", "events:stream$",  # server streams never end by themselves
            "--request-timeout", "20", "--workers", "1", "--no-color"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_a_client_never_sees_another_clients_conversation_history_or_files(door: Door) -> None:
    pytest.importorskip("services.auth")
    ana = door.ok("POST", "/v1/users", {"requestId": new_id(), "displayName": "Ana"})["user"]
    conversation_id = door.ok("POST", "/v1/conversations", {
        "requestId": new_id(), "type": "CONVERSATION_TYPE_GROUP", "members": [{"userId": ana["userId"]}]})["conversation"]["conversationId"]
    data = b"private"
    upload = door.ok("POST", "/v1/uploads", {
        "requestId": new_id(), "filename": "mine.txt", "contentType": "text/plain", "sizeBytes": str(len(data)),
        "sha256": hashlib.sha256(data).hexdigest(), "ownerUserId": ana["userId"]})

    other = {"authorization": f"Bearer {api_key(door.platform.raw, f'other-{uuid.uuid4().hex[:8]}')}"}
    for path in (f"/v1/conversations/{conversation_id}", f"/v1/conversations/{conversation_id}/messages",
                 f"/v1/users/{ana['userId']}", f"/v1/files/{upload['fileId']}"):
        answer = door.rest("GET", path, headers=other)
        assert answer.status_code == 404 and set(answer.json()) <= {"code", "message", "details"}, (path, answer.text)
    # Nor can it write there.
    sent = door.rest("POST", f"/v1/conversations/{conversation_id}/messages", headers=other, body={
        "requestId": new_id(), "senderUserId": ana["userId"], "content": {"text": "intruso"}})
    assert sent.status_code == 404, sent.text
    listed = door.ok("GET", "/v1/conversations", headers=other)
    assert conversation_id not in {c["conversationId"] for c in listed.get("conversations", [])}

