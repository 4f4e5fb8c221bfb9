"""The Instagram Messaging emulator as a client sees it: a real process on a
loopback port, spoken to over HTTP with the Graph API wire format, with its
webhooks received by a real HTTP server in the test process."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.emulators.meta_emulator import APP_SECRET, AUTH, VERIFY_TOKEN, control, start_meta_emulator
from tests.emulators.meta_emulator import http, receiver  # noqa: F401 - fixtures these tests use
from tests.emulators.meta_receiver import MetaWebhookReceiver
from tests.support.processes import ChildProcess

ACCOUNT = "17841400000000001"  # the default account: `me` for the default token
USER = "6543219876543210"
MiB = 1024 * 1024


def start_emulator(log_dir: Path, name: str, *extra: str, env: dict[str, str] | None = None,
                   port: int | None = None) -> tuple[ChildProcess, str]:
    return start_meta_emulator(log_dir, "instagram", name, 4321, *extra, env=env, port=port)


@pytest.fixture(scope="module")
def emulator(log_dir: Path) -> Any:
    process, base = start_emulator(log_dir, "instagram-emulator")
    try:
        yield base
    finally:
        process.stop()


async def send(http: aiohttp.ClientSession, base: str, body: Any, node: str = "me",
               headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    async with http.post(f"{base}/v21.0/{node}/messages", json=body,
                         headers=AUTH if headers is None else headers) as response:
        return response.status, await response.json(), response.headers


def text(body: str, user: str = USER) -> dict[str, Any]:
    return {"recipient": {"id": user}, "message": {"text": body}}


def attachment(kind: str, url: str, user: str = USER) -> dict[str, Any]:
    return {"recipient": {"id": user}, "message": {"attachment": {"type": kind, "payload": {"url": url}}}}


async def open_window(http: aiohttp.ClientSession, base: str, user: str = USER, ago_s: float = 60) -> None:
    await control(http, base, "PUT", f"contacts/{ACCOUNT}/{user}", {"last_inbound_time": time.time() - ago_s})


def event_of(delivery: Any) -> dict[str, Any]:
    [entry] = delivery.json["entry"]
    [event] = entry["messaging"]
    return event


# --- sending -------------------------------------------------------------------------


async def test_a_reply_is_accepted_recorded_and_echoed(http, emulator, receiver):
    injected = await control(http, emulator, "POST", "inbound",
                             {"ig_user_id": ACCOUNT, "from": USER, "text": "olá / ☕"})
    [inbound] = await receiver.wait_for(1)
    assert inbound.raw == injected["raw"].encode() and inbound.signature_ok
    assert b"ol\\u00e1 \\/ \\u2615" in inbound.raw
    envelope = inbound.json
    assert envelope["object"] == "instagram"
    [entry] = envelope["entry"]
    assert entry["id"] == ACCOUNT and isinstance(entry["time"], int) and entry["time"] > 10**12
    assert entry["messaging"] == [{"sender": {"id": USER}, "recipient": {"id": ACCOUNT},
                                   "timestamp": entry["messaging"][0]["timestamp"],
                                   "message": {"mid": injected["mid"], "text": "olá / ☕"}}]
    assert abs(entry["messaging"][0]["timestamp"] - time.time() * 1000) < 10_000

    body = {**text("oi! 👋"), "messaging_type": "RESPONSE"}
    status, reply, _ = await send(http, emulator, body)
    assert status == 200, reply
    assert reply == {"recipient_id": USER, "message_id": reply["message_id"]}
    assert reply["message_id"].startswith("aWdf")
    [echo] = (await receiver.wait_for(2))[1:]
    assert echo.signature_ok
    event = event_of(echo)
    assert event["sender"] == {"id": ACCOUNT} and event["recipient"] == {"id": USER}
    assert event["message"] == {"mid": reply["message_id"], "text": "oi! 👋", "is_echo": True}
    assert echo.headers["X-Hub-Signature-256"] == "sha256=" + hmac.new(
        APP_SECRET.encode(), echo.raw, hashlib.sha256).hexdigest()

    [sent] = (await control(http, emulator, "GET", f"messages?ig_user_id={ACCOUNT}&recipient_id={USER}"))["messages"]
    assert (sent["mid"], sent["type"], sent["body"]) == (reply["message_id"], "text", body)
    [request] = (await control(http, emulator, "GET", "requests?path=/me/messages"))["requests"]
    assert (request["ig_user_id"], request["status"]) == (ACCOUNT, 200)
    assert request["headers"]["Authorization"] == "Bearer [redacted]"
    # An explicit account id works the same as `me`.
    status, _, _ = await send(http, emulator, text("again"), node=ACCOUNT)
    assert status == 200


async def test_attachments_are_fetched_in_the_background_and_recorded(http, emulator, receiver):
    await open_window(http, emulator)
    receiver.files["cat.jpg"] = (b"\xff\xd8" + bytes(3000), "image/jpeg")
    receiver.files["huge.jpg"] = (bytes(8 * MiB + 1), "image/jpeg")
    mids = []
    for url in (receiver.file_url("cat.jpg"), receiver.file_url("huge.jpg"), receiver.file_url("gone.jpg")):
        status, reply, _ = await send(http, emulator, attachment("image", url))
        assert status == 200, reply
        mids.append(reply["message_id"])
    echoes = await receiver.wait_for(3)
    assert [event_of(d)["message"]["attachments"] for d in echoes] == [
        [{"type": "image", "payload": {"url": receiver.file_url(name)}}] for name in ("cat.jpg", "huge.jpg",
                                                                                        "gone.jpg")]
    deadline = time.monotonic() + 5
    while True:  # the fetches run beside the echoes
        messages = (await control(http, emulator, "GET", "messages"))["messages"]
        fetched = {m["mid"]: m["attachment_fetch"] for m in messages}
        if all(fetched.values()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert (fetched[mids[0]]["outcome"], fetched[mids[0]]["size"]) == ("ok", 3002)
    assert fetched[mids[0]]["content_type"] == "image/jpeg"
    assert fetched[mids[1]]["too_large"] is True and fetched[mids[1]]["limit"] == 8 * MiB
    assert (fetched[mids[2]]["outcome"], fetched[mids[2]]["http_status"]) == ("failed", 404)
    assert await receiver.quiet(0.2) == 3  # no status webhook on Instagram: echoes only


@pytest.mark.parametrize(("body", "needle"), [
    ({"message": {"text": "x"}}, "recipient"),
    ({"recipient": {}, "message": {"text": "x"}}, "recipient[id]"),
    ({"recipient": {"id": USER}}, "message"),
    ({"recipient": {"id": USER}, "message": {}}, "cannot be empty"),
    ({"recipient": {"id": USER}, "message": {"text": "x" * 1001}}, "1000"),
    ({"recipient": {"id": USER}, "message": {"text": "x", "attachment": {}}}, "Only one"),
    ({"recipient": {"id": USER}, "message": {"attachment": {"type": "gif", "payload": {"url": "https://x/y"}}}},
     "message[attachment][type]"),
    ({"recipient": {"id": USER}, "message": {"attachment": {"type": "image", "payload": {}}}}, "[url]"),
    ({"recipient": {"id": USER}, "message": {"text": "x"}, "messaging_type": "PUSH"}, "messaging_type"),
    ({"recipient": {"id": USER}, "message": {"text": "x"}, "messaging_type": "MESSAGE_TAG"}, "tag"),
    ([1, 2], "JSON object"),
])
async def test_malformed_sends_are_refused_with_code_100(http, emulator, body, needle):
    await open_window(http, emulator)
    status, reply, _ = await send(http, emulator, body)
    assert status == 400, reply
    assert reply["error"]["code"] == 100 and reply["error"]["message"].startswith("(#100) ")
    assert needle in reply["error"]["message"]
    assert reply["error"]["fbtrace_id"]
    assert (await control(http, emulator, "GET", "messages"))["count"] == 0


async def test_a_bad_token_is_401_and_an_unknown_path_is_refused(http, emulator):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        status, reply, _ = await send(http, emulator, text("x"), headers=headers)
        assert (status, reply["error"]["code"], reply["error"]["type"]) == (401, 190, "OAuthException")
    async with http.get(f"{emulator}/v21.0/me/conversations", headers=AUTH) as response:
        assert (response.status, (await response.json())["error"]["code"]) == (400, 2500)


async def test_the_reply_window_and_unavailable_users_are_checked_synchronously(http, emulator):
    status, reply, _ = await send(http, emulator, text("cold message"))
    assert status == 400
    assert (reply["error"]["code"], reply["error"]["error_subcode"]) == (10, 2018278)
    assert "outside of allowed window" in reply["error"]["message"]

    await open_window(http, emulator, ago_s=3 * 86400)
    status, reply, _ = await send(http, emulator, text("three days later"))
    assert reply["error"]["code"] == 10
    tagged = {**text("a human agent answers"), "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    status, reply, _ = await send(http, emulator, tagged)
    assert status == 200, reply  # HUMAN_AGENT allows 7 days

    await control(http, emulator, "PATCH", f"contacts/{ACCOUNT}/{USER}", {"available": False})
    status, reply, _ = await send(http, emulator, tagged)
    assert (status, reply["error"]["code"], reply["error"]["error_subcode"]) == (400, 551, 1545041)
    assert reply["error"]["message"] == "(#551) This person isn't available right now."
    assert (await control(http, emulator, "GET", "messages"))["count"] == 1


async def test_audio_and_video_calls_are_limited_per_account(http, emulator):
    limits = (await control(http, emulator, "GET", "limits"))["limits"]
    assert (limits["av_per_s"], limits["av_burst"], limits["text_per_s"]) == (10, 10, 300)
    # The default burst, refilled slower so that timing on a busy machine cannot blur the edge.
    await control(http, emulator, "PATCH", "limits", {"av_per_s": 2})
    await open_window(http, emulator)
    url = "https://cdn.example.com/clip.mp4"  # not loopback: recorded, never fetched
    for n in range(10):
        status, reply, _ = await send(http, emulator, attachment("video" if n % 2 else "audio", url))
        assert status == 200, (n, reply)
    status, reply, _ = await send(http, emulator, attachment("video", url))
    assert status == 429
    assert reply["error"]["code"] == 613
    assert reply["error"]["message"] == "(#613) Calls to this api have exceeded the rate limit."
    status, _, _ = await send(http, emulator, text("text has its own 300/s budget"))
    assert status == 200
    for _ in range(2):  # paced under 2/s: all pass
        await asyncio.sleep(0.55)
        status, reply, _ = await send(http, emulator, attachment("audio", url))
        assert status == 200, reply
    skipped = (await control(http, emulator, "GET", "messages?type=audio&limit=1"))["messages"][0]
    assert skipped["attachment_fetch"]["outcome"] == "skipped"  # fetched (or not) long ago

    await control(http, emulator, "PATCH", "limits", {"text_per_s": 1, "text_burst": 2})
    statuses = [(await send(http, emulator, text(f"t{n}")))[0] for n in range(3)]
    assert statuses == [200, 200, 429]


# --- webhooks ------------------------------------------------------------------------------


async def test_the_subscription_is_refused_when_the_challenge_is_wrong(http, emulator):
    hook = await MetaWebhookReceiver(APP_SECRET, VERIFY_TOKEN).start()
    try:
        hook.wrong_challenge = "not-it"
        refused = await control(http, emulator, "PUT", "subscription",
                                {"callback_url": hook.url, "verify_token": VERIFY_TOKEN}, expect=400)
        assert "not the challenge" in refused["error"]
        assert (await control(http, emulator, "GET", "subscription"))["subscription"] is None
        hook.wrong_challenge = None
        await control(http, emulator, "PUT", "subscription", {"callback_url": hook.url})  # default verify token
        assert (await control(http, emulator, "GET", "health"))["subscribed"] is True
    finally:
        await control(http, emulator, "DELETE", "subscription")
        await hook.stop()


async def test_duplicate_injection_and_retry_after_a_500(http, emulator, receiver):
    receiver.fail_next = 1
    injected = await control(http, emulator, "POST", "inbound", {"from": USER, "text": "twice", "duplicate": 1})
    deliveries = await receiver.wait_for(3)
    assert {d.raw for d in deliveries} == {injected["raw"].encode()}
    assert all(d.signature_ok for d in deliveries)
    attempts = await control(http, emulator, "GET", f"webhook-deliveries?mid={injected['mid']}")
    assert sorted((d["delivery_id"], d["attempt"], d["http_status"]) for d in attempts["deliveries"]) == [
        (1, 1, 500), (1, 2, 200), (2, 1, 200)]
    assert {d["kind"] for d in attempts["deliveries"]} == {"message"}
    contact = await control(http, emulator, "GET", f"contacts/{ACCOUNT}/{USER}")
    assert contact["contact"]["window_open"] is True


async def test_injected_attachments_are_served_by_the_emulator(http, emulator, receiver):
    image = random.Random(3).randbytes(4096)
    injected = await control(http, emulator, "POST", "inbound", {
        "from": USER, "attachments": [{"type": "image", "bytes_b64": base64.b64encode(image).decode(),
                                       "mime_type": "image/png"},
                                      {"type": "video", "url": "https://cdn.example.com/v.mp4"}]})
    [delivery] = await receiver.wait_for(1)
    attachments = event_of(delivery)["message"]["attachments"]
    assert attachments[1] == {"type": "video", "payload": {"url": "https://cdn.example.com/v.mp4"}}
    url = attachments[0]["payload"]["url"]
    assert attachments[0]["type"] == "image" and url.startswith(emulator)
    assert injected["message"]["attachments"] == attachments
    async with http.get(url) as response:  # a CDN URL: no token needed
        assert response.status == 200 and response.headers["Content-Type"] == "image/png"
        assert await response.read() == image
    async with http.get(url.replace("signature=", "signature=0")) as response:
        assert response.status == 403


async def test_read_receipts_on_demand_and_by_policy(http, emulator, receiver):
    await open_window(http, emulator)
    _, reply, _ = await send(http, emulator, text("did you see this?"))
    mid = reply["message_id"]
    await receiver.wait_for(1)  # the echo
    await control(http, emulator, "POST", "reads", {"mid": mid})
    [read] = (await receiver.wait_for(2))[1:]
    event = event_of(read)
    assert event["sender"] == {"id": USER} and event["recipient"] == {"id": ACCOUNT}
    assert event["read"] == {"mid": mid} and isinstance(event["timestamp"], int)

    await control(http, emulator, "PUT", "status-policy", {"echo": False, "auto_read": True, "delay_ms": 10})
    _, reply, _ = await send(http, emulator, text("and this?"))
    [auto] = (await receiver.wait_for(3))[2:]
    assert event_of(auto)["read"] == {"mid": reply["message_id"]}
    assert await receiver.quiet(0.2) == 3  # no echo this time
    kinds = [d["kind"] for d in (await control(http, emulator, "GET", "webhook-deliveries"))["deliveries"]]
    assert kinds == ["echo", "read", "read"]


# --- faults and configuration --------------------------------------------------------------


async def test_faults_fail_next_throttle_and_down(http, emulator):
    await open_window(http, emulator)
    await control(http, emulator, "PUT", "faults", {"fail_next": 1})
    status, reply, _ = await send(http, emulator, text("x"))
    assert (status, reply["error"]["code"], reply["error"]["is_transient"]) == (500, 1, True)
    await control(http, emulator, "PUT", "faults", {"fail_next_429": 1, "retry_after": 2})
    status, reply, headers = await send(http, emulator, text("x"))
    assert (status, reply["error"]["code"], headers["Retry-After"]) == (429, 613, "2")
    status, _, _ = await send(http, emulator, text("x"))
    assert status == 200
    await control(http, emulator, "PATCH", "faults", {"down": True})
    status, reply, _ = await send(http, emulator, text("x"))
    assert (status, reply["error"]["code"]) == (503, 2)
    faults = (await control(http, emulator, "GET", "faults"))["faults"]
    assert faults["down"] is True and faults["retry_after"] == 2
    recorded = await control(http, emulator, "GET", "requests")
    assert [r["status"] for r in recorded["requests"]] == [500, 429, 200, 503]


async def test_tokens_bound_to_accounts_from_the_environment(log_dir):
    process, base = start_emulator(
        log_dir, "instagram-emulator-env", "--ig-user-id", "17841411111111111", "--ig-user-id", "17841422222222222",
        "--no-window", env={"C4A_INSTAGRAM_ACCESS_TOKEN": "tok-a=17841422222222222,tok-b"})
    try:
        async with aiohttp.ClientSession() as http:
            bound, unbound = {"Authorization": "Bearer tok-a"}, {"Authorization": "Bearer tok-b"}
            status, _, _ = await send(http, base, text("x"), headers=bound)
            assert status == 200
            status, reply, _ = await send(http, base, text("x"), node="17841411111111111", headers=bound)
            assert (status, reply["error"]["error_subcode"]) == (400, 33)  # not this token's account
            status, _, _ = await send(http, base, text("x"), node="17841411111111111", headers=unbound)
            assert status == 200
            status, reply, _ = await send(http, base, text("x"), node="17841433333333333", headers=unbound)
            assert (status, reply["error"]["code"]) == (400, 100)
            status, _, _ = await send(http, base, text("x"), headers=AUTH)
            assert status == 401
            messages = (await control(http, base, "GET", "messages"))["messages"]
            assert [m["ig_user_id"] for m in messages] == ["17841422222222222", "17841411111111111"]
    finally:
        process.stop()


async def test_the_account_reads_back_as_a_node_and_an_unknown_id_does_not(http, emulator):
    for node in (ACCOUNT, "me"):
        async with http.get(f"{emulator}/v21.0/{node}", headers=AUTH) as response:
            assert response.status == 200 and (await response.json()) == {"id": ACCOUNT}
    async with http.get(f"{emulator}/v21.0/not-an-account", headers=AUTH) as response:
        assert response.status == 400 and (await response.json())["error"]["code"] == 100
    async with http.get(f"{emulator}/v21.0/{ACCOUNT}", headers={"Authorization": "Bearer wrong"}) as response:
        assert response.status == 401
