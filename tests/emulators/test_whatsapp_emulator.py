"""The WhatsApp Cloud API emulator as a client sees it: a real process on a
loopback port, spoken to over HTTP with the Graph API wire format, with its
webhooks received by a real HTTP server in the test process."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.emulators.meta_emulator import APP_SECRET, AUTH, TOKEN, VERIFY_TOKEN, control, start_meta_emulator
from tests.emulators.meta_emulator import http, receiver  # noqa: F401 - fixtures these tests use
from tests.emulators.meta_receiver import MetaWebhookReceiver
from tests.support.ports import free_port
from tests.support.processes import ChildProcess

PHONE_ID = "106540352242922"
USER = "16315551181"
MiB = 1024 * 1024


def start_emulator(log_dir: Path, name: str, *extra: str, env: dict[str, str] | None = None,
                   port: int | None = None) -> tuple[ChildProcess, str]:
    return start_meta_emulator(log_dir, "whatsapp", name, 1234, *extra, env=env, port=port)


@pytest.fixture(scope="module")
def emulator(log_dir: Path) -> Any:
    process, base = start_emulator(log_dir, "whatsapp-emulator")
    try:
        yield base
    finally:
        process.stop()


async def graph(http: aiohttp.ClientSession, base: str, verb: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    async with http.request(verb, f"{base}/v21.0/{path}", json=body,
                            headers=AUTH if headers is None else headers) as response:
        return response.status, await response.json(), response.headers


async def send(http: aiohttp.ClientSession, base: str, body: dict[str, Any], phone_id: str = PHONE_ID,
               headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    return await graph(http, base, "POST", f"{phone_id}/messages", {"messaging_product": "whatsapp", **body}, headers)


async def open_window(http: aiohttp.ClientSession, base: str, wa_id: str = USER, ago_s: float = 60) -> None:
    await control(http, base, "PUT", f"contacts/{PHONE_ID}/{wa_id}", {"last_inbound_time": time.time() - ago_s})


def text(body: str, to: str = USER) -> dict[str, Any]:
    return {"to": to, "type": "text", "text": {"body": body}}


def statuses_of(deliveries: list[Any]) -> list[tuple[str, str]]:
    found = []
    for delivery in deliveries:
        for status in delivery.json["entry"][0]["changes"][0]["value"].get("statuses", []):
            found.append((status["id"], status["status"]))
    return found


# --- sending -------------------------------------------------------------------


async def test_text_send_answers_the_cloud_api_shape_and_is_recorded(http, emulator):
    await open_window(http, emulator)
    body = {"recipient_type": "individual", "to": "+1 631-555-1181", "type": "text",
            "text": {"body": "Olá, café ☕ https://x.y/z", "preview_url": True}}
    status, reply, headers = await send(http, emulator, body)
    assert status == 200, reply
    assert headers["Content-Type"].startswith("application/json")
    [message] = reply["messages"]
    assert reply == {"messaging_product": "whatsapp", "contacts": [{"input": "+1 631-555-1181", "wa_id": USER}],
                     "messages": [{"id": message["id"]}]}
    assert message["id"].startswith("wamid.") and len(message["id"]) > 30
    _, second, _ = await send(http, emulator, text("again"))
    assert second["messages"][0]["id"] != message["id"]

    recorded = await control(http, emulator, "GET", f"messages?phone_number_id={PHONE_ID}&to=%2B1 631-555-1181")
    [sent] = recorded["messages"]
    assert sent["wamid"] == message["id"] and sent["recipient"] == USER and sent["type"] == "text"
    assert sent["body"] == {"messaging_product": "whatsapp", **body}
    assert sent["window"] == "open"

    requests = await control(http, emulator, "GET", f"requests?phone_number_id={PHONE_ID}&path=/messages")
    first = requests["requests"][0]
    assert (first["method"], first["path"], first["status"]) == ("POST", f"/v21.0/{PHONE_ID}/messages", 200)
    assert first["headers"]["Authorization"] == "Bearer [redacted]"
    assert first["body"]["text"]["body"] == "Olá, café ☕ https://x.y/z"
    assert TOKEN not in json.dumps(requests)


async def test_every_send_type_is_accepted_in_its_exact_shape(http, emulator):
    await open_window(http, emulator)
    await control(http, emulator, "PATCH", "status-policy", {"auto": []})
    upload = aiohttp.FormData()
    upload.add_field("messaging_product", "whatsapp")
    upload.add_field("type", "application/pdf")
    upload.add_field("file", b"%PDF-1.4 tiny", filename="r.pdf", content_type="application/pdf")
    async with http.post(f"{emulator}/v21.0/{PHONE_ID}/media", data=upload, headers=AUTH) as response:
        media_id = (await response.json())["id"]
    bodies = [
        {"to": USER, "type": "template", "template": {
            "name": "order_update", "language": {"code": "pt_BR"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]}},
        {"to": USER, "type": "image", "image": {"link": "https://cdn.example.com/a.jpg", "caption": "look"}},
        {"to": USER, "type": "document", "document": {"id": media_id, "filename": "r.pdf", "caption": "report"}},
        {"to": USER, "type": "audio", "audio": {"link": "https://cdn.example.com/a.ogg"}},
        {"to": USER, "type": "video", "video": {"link": "https://cdn.example.com/a.mp4", "caption": "clip"}},
        {"to": USER, "type": "sticker", "sticker": {"link": "https://cdn.example.com/a.webp"}},
        {"recipient_type": "group", "to": "Ez3gX0n7HqL", "type": "text", "text": {"body": "hi all"}},
    ]
    replies = []
    for body in bodies:
        status, reply, _ = await send(http, emulator, body)
        assert status == 200, (body, reply)
        replies.append(reply)
    assert replies[0]["messages"][0]["message_status"] == "accepted"  # templates say so
    assert replies[1]["contacts"] == [{"input": USER, "wa_id": USER}]
    assert "contacts" not in replies[-1]  # a group has no contact
    recorded = (await control(http, emulator, "GET", "messages"))["messages"]
    assert [m["type"] for m in recorded] == ["template", "image", "document", "audio", "video", "sticker", "text"]
    assert [m["body"] for m in recorded] == [{"messaging_product": "whatsapp", **body} for body in bodies]
    assert [m["wamid"] for m in recorded] == [r["messages"][0]["id"] for r in replies]
    assert recorded[-1]["recipient_type"] == "group" and recorded[-1]["window"] == "n/a"


@pytest.mark.parametrize(("body", "code", "needle"), [
    ({"to": USER, "type": "text", "text": {"body": "x"}, "messaging_product": None}, 100, "messaging_product"),
    ({"messaging_product": "sms", "to": USER, "text": {"body": "x"}}, 100, "messaging_product"),
    ({"type": "text", "text": {"body": "x"}}, 131008, "to"),
    ({"to": USER, "type": "text"}, 131008, "text"),
    ({"to": USER, "type": "text", "text": {}}, 131008, "text['body']"),
    ({"to": USER, "type": "text", "text": {"body": ""}}, 131009, "text['body']"),
    ({"to": USER, "type": "text", "text": {"body": "x" * 4097}}, 131009, "4096"),
    ({"to": USER, "type": "text", "text": {"body": "x", "preview_url": "yes"}}, 100, "preview_url"),
    ({"to": USER, "type": "location", "location": {}}, 100, "type"),
    ({"to": USER, "recipient_type": "broadcast", "text": {"body": "x"}}, 100, "recipient_type"),
    ({"to": "not-a-number", "type": "text", "text": {"body": "x"}}, 100, "to"),
    ({"to": USER, "type": "image", "image": {}}, 131008, "image['link']"),
    ({"to": USER, "type": "image", "image": {"link": "ftp://x/y.jpg"}}, 131009, "link"),
    ({"to": USER, "type": "image", "image": {"link": "https://x/y.jpg", "id": "1"}}, 100, "not both"),
    ({"to": USER, "type": "image", "image": {"id": "999999999999999"}}, 131009, "media id"),
    ({"to": USER, "type": "audio", "audio": {"link": "https://x/a.ogg", "caption": "no"}}, 100, "caption"),
    ({"to": USER, "type": "image", "image": {"link": "https://x/y.jpg", "filename": "y.jpg"}}, 100, "filename"),
    ({"to": USER, "type": "template", "template": {"language": {"code": "en"}}}, 131008, "template['name']"),
    ({"to": USER, "type": "template", "template": {"name": "t"}}, 131008, "language"),
    ({"to": USER, "type": "template", "template": {"name": "t", "language": {"code": "en"},
                                                   "components": [{"type": "body", "parameters": [{"type": "text"}]}]}},
     131008, "['text']"),
])
async def test_malformed_sends_are_refused_with_the_platform_codes(http, emulator, body, code, needle):
    payload = {key: value for key, value in {"messaging_product": "whatsapp", **body}.items() if value is not None}
    status, reply, _ = await graph(http, emulator, "POST", f"{PHONE_ID}/messages", payload)
    assert status == 400, reply
    error = reply["error"]
    assert error["code"] == code
    assert error["message"].startswith(f"(#{code}) ")
    assert needle in error["error_data"]["details"]
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert error["type"] == "OAuthException" and error["fbtrace_id"]
    assert (await control(http, emulator, "GET", "messages"))["count"] == 0


async def test_a_bad_or_missing_token_is_401_code_190(http, emulator):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        status, reply, response_headers = await send(http, emulator, text("x"), headers=headers)
        assert status == 401
        assert reply["error"]["code"] == 190 and reply["error"]["type"] == "OAuthException"
        assert reply["error"]["message"].startswith("Invalid OAuth access token")
        assert "invalid_token" in response_headers["WWW-Authenticate"]
    # The Graph API also takes the token as a query parameter.
    status, _, _ = await graph(http, emulator, "POST", f"{PHONE_ID}/messages?access_token={TOKEN}",
                               {"messaging_product": "whatsapp", **text("x")}, headers={})
    assert status == 200
    recorded = await control(http, emulator, "GET", "requests?status=401")
    assert recorded["count"] == 3
    status, reply, _ = await graph(http, emulator, "GET", "nope/deeper")
    assert (status, reply["error"]["code"]) == (400, 2500)


# --- limits ----------------------------------------------------------------------


async def test_throughput_limit_answers_130429_over_it_and_not_under_it(http, emulator):
    limits = (await control(http, emulator, "GET", "limits"))["limits"]
    assert (limits["throughput_per_s"], limits["throughput_burst"]) == (80, 80)
    # A small burst refilled slowly, so that timing on a busy machine cannot blur the edge.
    await control(http, emulator, "PATCH", "limits", {"throughput_per_s": 2, "throughput_burst": 5})
    for n in range(5):
        status, reply, _ = await send(http, emulator, text("burst", to=f"1555000{n:04d}"))
        assert status == 200, reply
    status, reply, headers = await send(http, emulator, text("one too many", to="15550009999"))
    assert status == 429
    assert reply["error"]["code"] == 130429
    assert reply["error"]["message"] == "(#130429) Rate limit hit"
    assert reply["error"]["error_data"]["details"] == "Cloud API message throughput has been reached."
    assert "Retry-After" not in headers  # the real limit gives no hint; back off on your own
    for n in range(2):  # paced under 2/s: all pass
        await asyncio.sleep(0.55)
        status, reply, _ = await send(http, emulator, text("paced", to=f"1555100{n:04d}"))
        assert status == 200, reply
    assert (await control(http, emulator, "GET", "messages"))["count"] == 7


async def test_pair_limit_allows_a_burst_of_45_then_answers_131056(http, emulator):
    for n in range(45):
        status, reply, _ = await send(http, emulator, text(f"m{n}"))
        assert status == 200, (n, reply)
    status, reply, _ = await send(http, emulator, text("m45"))
    assert (status, reply["error"]["code"]) == (429, 131056)
    assert "pair rate limit hit" in reply["error"]["message"]
    status, _, _ = await send(http, emulator, text("someone else", to="15550001234"))
    assert status == 200
    await control(http, emulator, "PATCH", "limits", {"pair_enabled": False})
    status, _, _ = await send(http, emulator, text("m45 again"))
    assert status == 200


# --- subscription and webhooks -----------------------------------------------------


async def test_the_subscription_needs_the_handshake(http, emulator):
    hook = await MetaWebhookReceiver(APP_SECRET, VERIFY_TOKEN).start()
    try:
        hook.wrong_challenge = "12345"
        refused = await control(http, emulator, "PUT", "subscription",
                                {"callback_url": hook.url, "verify_token": VERIFY_TOKEN}, expect=400)
        assert "not the challenge" in refused["error"] and refused["subscription"] is None
        [query] = hook.handshakes
        assert query["hub.mode"] == "subscribe" and query["hub.verify_token"] == VERIFY_TOKEN
        assert query["hub.challenge"] == refused["handshake"]["challenge"]

        hook.wrong_challenge = None
        refused = await control(http, emulator, "PUT", "subscription",
                                {"callback_url": hook.url, "verify_token": "other"}, expect=400)
        assert "HTTP 403" in refused["error"]
        assert (await control(http, emulator, "GET", "subscription"))["subscription"] is None
        await control(http, emulator, "PUT", "subscription", {"callback_url": "http://10.1.2.3/h"}, expect=400)

        accepted = await control(http, emulator, "PUT", "subscription",
                                 {"callback_url": hook.url, "verify_token": VERIFY_TOKEN})
        assert accepted["subscription"]["callback_url"] == hook.url
        assert (await control(http, emulator, "GET", "health"))["subscribed"] is True
    finally:
        await control(http, emulator, "DELETE", "subscription")
        await hook.stop()


async def test_webhooks_are_signed_over_the_exact_escaped_bytes_and_retried_after_a_500(http, emulator, receiver):
    receiver.fail_next = 1
    injected = await control(http, emulator, "POST", "inbound",
                             {"phone_number_id": PHONE_ID, "from": USER, "name": "Ana", "text": "café / ☕"})
    first, second = await receiver.wait_for(2)
    assert first.raw == second.raw == injected["raw"].encode()
    assert first.signature_ok and second.signature_ok
    assert first.headers["X-Hub-Signature-256"] == "sha256=" + hmac.new(
        APP_SECRET.encode(), first.raw, hashlib.sha256).hexdigest()
    assert first.headers["Content-Type"] == "application/json"
    assert b"caf\\u00e9 \\/ \\u2615" in first.raw  # Meta's escaped form
    reserialised = json.dumps(first.json, ensure_ascii=False).encode()
    assert hmac.new(APP_SECRET.encode(), reserialised, hashlib.sha256).hexdigest() not in first.headers[
        "X-Hub-Signature-256"]

    envelope = first.json
    assert envelope["object"] == "whatsapp_business_account"
    [entry] = envelope["entry"]
    [change] = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"]["phone_number_id"] == PHONE_ID and value["metadata"]["display_phone_number"].isdigit()
    assert value["contacts"] == [{"profile": {"name": "Ana"}, "wa_id": USER}]
    [message] = value["messages"]
    assert message == {"from": USER, "id": injected["wamid"], "timestamp": message["timestamp"], "type": "text",
                       "text": {"body": "café / ☕"}}
    assert isinstance(message["timestamp"], str) and abs(int(message["timestamp"]) - time.time()) < 10

    deliveries = await control(http, emulator, "GET", f"webhook-deliveries?wamid={injected['wamid']}")
    assert [(d["kind"], d["attempt"], d["http_status"]) for d in deliveries["deliveries"]] == [
        ("messages", 1, 500), ("messages", 2, 200)]
    gap = deliveries["deliveries"][1]["at"] - deliveries["deliveries"][0]["at"]
    assert 0.15 <= gap < 2.0  # the configured 0.2 s initial backoff


async def test_statuses_follow_a_send_per_the_status_policy(http, emulator, receiver):
    await control(http, emulator, "POST", "inbound", {"phone_number_id": PHONE_ID, "from": USER, "text": "hi"})
    await receiver.wait_for(1)
    _, reply, _ = await send(http, emulator, text("hello back"))
    wamid = reply["messages"][0]["id"]
    deliveries = await receiver.wait_for(3)
    assert statuses_of(deliveries[1:]) == [(wamid, "sent"), (wamid, "delivered")]
    sent = deliveries[1].json["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert sent["recipient_id"] == USER and isinstance(sent["timestamp"], str)
    assert sent["conversation"]["origin"]["type"] == "service" and "expiration_timestamp" in sent["conversation"]
    assert sent["pricing"] == {"billable": False, "pricing_model": "CBP", "category": "service"}
    assert all(d.signature_ok for d in deliveries)

    await control(http, emulator, "PUT", "status-policy", {"auto": ["sent", "delivered", "read"],
                                                          "reverse_order": True, "duplicate": True,
                                                          "pricing": False, "delay_ms": 10})
    _, reply, _ = await send(http, emulator, text("again"))
    wamid = reply["messages"][0]["id"]
    deliveries = await receiver.wait_for(9)
    assert statuses_of(deliveries[3:]) == [(wamid, s) for s in ("read", "read", "delivered", "delivered",
                                                                 "sent", "sent")]
    assert "pricing" not in deliveries[-1].json["entry"][0]["changes"][0]["value"]["statuses"][0]
    recorded = await control(http, emulator, "GET", f"messages?wamid={wamid}")
    assert recorded["messages"][0]["outcome"] == "sent"


async def test_free_form_outside_the_window_fails_later_with_131047_and_templates_go_through(
        http, emulator, receiver):
    status, reply, _ = await send(http, emulator, text("are you there?"))
    assert status == 200  # accepted at first, like the real platform
    late = reply["messages"][0]["id"]
    [failed] = await receiver.wait_for(1)
    [status_object] = failed.json["entry"][0]["changes"][0]["value"]["statuses"]
    assert (status_object["id"], status_object["status"], status_object["recipient_id"]) == (late, "failed", USER)
    assert status_object["errors"] == [{
        "code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
        "error_data": {"details": "Message failed to send because more than 24 hours have passed since the "
                                  "customer last replied to this number."},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]
    assert await receiver.quiet(0.2) == 1  # no sent/delivered after a failure

    _, reply, _ = await send(http, emulator, {"to": USER, "type": "template",
                                              "template": {"name": "hello_world", "language": {"code": "en_US"}}})
    template = reply["messages"][0]["id"]
    deliveries = await receiver.wait_for(3)
    assert statuses_of(deliveries[1:]) == [(template, "sent"), (template, "delivered")]
    assert deliveries[1].json["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"]["category"] == "utility"

    await open_window(http, emulator, ago_s=25 * 3600)
    _, reply, _ = await send(http, emulator, text("still closed"))
    deliveries = await receiver.wait_for(4)
    assert statuses_of(deliveries[3:]) == [(reply["messages"][0]["id"], "failed")]
    contact = await control(http, emulator, "GET", f"contacts/{PHONE_ID}/{USER}")
    assert contact["contact"]["window_open"] is False

    await open_window(http, emulator, ago_s=23 * 3600)
    _, reply, _ = await send(http, emulator, text("inside"))
    deliveries = await receiver.wait_for(6)
    assert statuses_of(deliveries[4:]) == [(reply["messages"][0]["id"], "sent"), (reply["messages"][0]["id"],
                                                                                  "delivered")]
    _, reply, _ = await send(http, emulator, {"recipient_type": "group", "to": "G1", "type": "text",
                                              "text": {"body": "groups have no window"}})
    deliveries = await receiver.wait_for(8)
    assert statuses_of(deliveries[6:]) == [(reply["messages"][0]["id"], "sent"), (reply["messages"][0]["id"],
                                                                                  "delivered")]


async def test_explicit_statuses_arrive_in_the_given_order_with_duplicates(http, emulator, receiver):
    await open_window(http, emulator)
    await control(http, emulator, "PATCH", "status-policy", {"auto": []})
    _, reply, _ = await send(http, emulator, text("x"))
    wamid = reply["messages"][0]["id"]
    await control(http, emulator, "POST", "statuses", {"id": wamid, "statuses": ["read", "delivered", "delivered"]})
    deliveries = await receiver.wait_for(3)
    assert statuses_of(deliveries) == [(wamid, "read"), (wamid, "delivered"), (wamid, "delivered")]
    errors = [{"code": 131026, "title": "Message undeliverable"}]
    await control(http, emulator, "POST", "statuses", {"id": wamid, "statuses": ["failed"], "errors": errors})
    [failed] = (await receiver.wait_for(4))[3:]
    assert failed.json["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"] == errors


# --- inbound and media --------------------------------------------------------------


async def test_inbound_injection_with_duplicates_media_and_groups(http, emulator, receiver):
    image = random.Random(5).randbytes(2048)
    injected = await control(http, emulator, "POST", "inbound", {
        "phone_number_id": PHONE_ID, "from": USER, "name": "Ana", "type": "image", "duplicate": 2,
        "media": {"bytes_b64": base64.b64encode(image).decode(), "mime_type": "image/png", "caption": "look"},
    })
    deliveries = await receiver.wait_for(3)
    assert {d.raw for d in deliveries} == {injected["raw"].encode()}
    message = deliveries[0].json["entry"][0]["changes"][0]["value"]["messages"][0]
    assert message["type"] == "image" and message["id"] == injected["wamid"]
    assert message["image"] == {"caption": "look", "mime_type": "image/png",
                                "sha256": base64.b64encode(hashlib.sha256(image).digest()).decode(),
                                "id": injected["media_id"]}
    assert (await control(http, emulator, "GET", f"contacts/{PHONE_ID}/{USER}"))["contact"]["window_open"]

    status, info, _ = await graph(http, emulator, "GET", injected["media_id"])
    assert status == 200
    assert (info["mime_type"], info["file_size"], info["id"]) == ("image/png", len(image), injected["media_id"])
    async with http.get(info["url"], headers=AUTH) as response:
        assert response.status == 200 and await response.read() == image
    async with http.get(info["url"]) as response:
        assert response.status == 401

    group = await control(http, emulator, "POST", "inbound",
                          {"phone_number_id": PHONE_ID, "from": "15550007777", "group_id": "G-42", "text": "hey"})
    [delivery] = (await receiver.wait_for(4))[3:]
    assert delivery.json["entry"][0]["changes"][0]["value"]["messages"][0]["group_id"] == "G-42"
    assert group["message"]["group_id"] == "G-42"

    # Marking a received message read.
    status, reply, _ = await send(http, emulator, {"status": "read", "message_id": injected["wamid"]})
    assert (status, reply) == (200, {"success": True})
    listed = await control(http, emulator, "GET", f"inbound?wamid={injected['wamid']}")
    assert listed["inbound"][0]["read_marked_at"]


async def test_media_upload_describe_download_send_and_delete(http, emulator):
    payload = random.Random(9).randbytes(70_000)
    form = aiohttp.FormData()
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", "image/jpeg")
    form.add_field("file", payload, filename="photo.jpg", content_type="image/jpeg")
    async with http.post(f"{emulator}/v21.0/{PHONE_ID}/media", data=form, headers=AUTH) as response:
        assert response.status == 200
        media_id = (await response.json())["id"]
    assert media_id.isdigit()
    status, info, _ = await graph(http, emulator, "GET", media_id)
    assert info == {"messaging_product": "whatsapp", "url": info["url"], "mime_type": "image/jpeg",
                    "sha256": base64.b64encode(hashlib.sha256(payload).digest()).decode(),
                    "file_size": len(payload), "id": media_id}
    async with http.get(info["url"], headers=AUTH) as response:
        assert response.headers["Content-Type"] == "image/jpeg" and await response.read() == payload
    recorded = await control(http, emulator, "GET", "requests?path=/media")
    assert recorded["requests"][0]["body"]["file"]["sha256"] == hashlib.sha256(payload).hexdigest()

    await open_window(http, emulator)
    status, _, _ = await send(http, emulator, {"to": USER, "type": "image", "image": {"id": media_id}})
    assert status == 200
    form = aiohttp.FormData()
    form.add_field("type", "image/jpeg")
    form.add_field("file", payload, filename="photo.jpg")
    async with http.post(f"{emulator}/v21.0/{PHONE_ID}/media", data=form, headers=AUTH) as response:
        assert (response.status, (await response.json())["error"]["code"]) == (400, 100)

    status, reply, _ = await graph(http, emulator, "DELETE", media_id)
    assert (status, reply) == (200, {"success": True})
    status, reply, _ = await graph(http, emulator, "GET", media_id)
    assert (status, reply["error"]["code"], reply["error"]["error_subcode"]) == (400, 100, 33)


async def test_media_links_are_fetched_after_acceptance_and_size_checked(http, emulator, receiver):
    await open_window(http, emulator)
    await control(http, emulator, "PATCH", "status-policy", {"auto": ["sent"]})
    receiver.files["ok.jpg"] = (b"\xff\xd8" + bytes(1000), "image/jpeg")
    receiver.files["big.jpg"] = (bytes(5 * MiB + 1), "image/jpeg")
    receiver.files["sticker.webp"] = (bytes(100 * 1024 + 1), "image/webp")
    receiver.files["wrong.jpg"] = (bytes(10), "text/html")
    wamids = []
    for kind, name in (("image", "ok.jpg"), ("image", "big.jpg"), ("image", "missing.jpg"),
                       ("sticker", "sticker.webp"), ("image", "wrong.jpg")):
        status, reply, _ = await send(http, emulator, {"to": USER, "type": kind,
                                                       kind: {"link": receiver.file_url(name)}})
        assert status == 200, reply
        wamids.append(reply["messages"][0]["id"])
    deliveries = await receiver.wait_for(5)
    by_wamid = {}
    for delivery in deliveries:
        [status_object] = delivery.json["entry"][0]["changes"][0]["value"]["statuses"]
        by_wamid[status_object["id"]] = status_object
    assert by_wamid[wamids[0]]["status"] == "sent"
    for wamid, needle in zip(wamids[1:], ("5242881 bytes exceeds the 5242880 byte limit", "http code 404",
                                          "exceeds the 102400 byte limit for sticker", "Unsupported content type")):
        assert by_wamid[wamid]["status"] == "failed"
        [error] = by_wamid[wamid]["errors"]
        assert (error["code"], error["title"]) == (131053, "Media upload error")
        assert needle in error["error_data"]["details"], error
    ok = (await control(http, emulator, "GET", f"messages?wamid={wamids[0]}"))["messages"][0]
    assert ok["media"]["outcome"] == "ok" and ok["media"]["size"] == 1002
    assert ok["media"]["content_type"] == "image/jpeg"


# --- faults ---------------------------------------------------------------------------


async def test_faults_fail_next_down_and_throttling(http, emulator):
    await open_window(http, emulator)
    await control(http, emulator, "PUT", "faults", {"fail_next": 2, "error_status": 503})
    results = []
    for _ in range(3):
        status, reply, _ = await send(http, emulator, text("retry me"))
        results.append(status)
        if status == 503:
            assert reply["error"]["code"] == 2 and reply["error"]["is_transient"] is True
    assert results == [503, 503, 200]
    assert (await control(http, emulator, "GET", "messages"))["count"] == 1

    await control(http, emulator, "PUT", "faults", {"fail_next_429": 1, "retry_after": 3})
    status, reply, headers = await send(http, emulator, text("later"))
    assert (status, reply["error"]["code"], headers["Retry-After"]) == (429, 130429, "3")
    status, _, _ = await send(http, emulator, text("later"))
    assert status == 200

    await control(http, emulator, "PUT", "faults", {"down": True})
    for verb, path in (("POST", f"{PHONE_ID}/messages"), ("GET", "123456"), ("POST", f"{PHONE_ID}/media")):
        status, reply, _ = await graph(http, emulator, verb, path, {"messaging_product": "whatsapp", **text("x")})
        assert (status, reply["error"]["code"]) == (503, 2)
    assert (await control(http, emulator, "GET", "health"))["ok"] is True  # the control API still works
    await control(http, emulator, "DELETE", "faults")
    status, _, _ = await send(http, emulator, text("back"))
    assert status == 200

    await control(http, emulator, "PUT", "faults", {"latency_ms": 200})
    started = time.monotonic()
    await send(http, emulator, text("slow"))
    assert time.monotonic() - started >= 0.2


async def test_random_faults_repeat_with_the_same_seed(http, emulator):
    async def statuses() -> list[int]:
        await control(http, emulator, "PUT", "limits", {"enabled": False})
        await control(http, emulator, "PUT", "faults", {"error_rate": 0.5, "seed": 42})
        return [(await send(http, emulator, text("x")))[0] for _ in range(12)]

    first = await statuses()
    assert set(first) == {200, 500}
    await control(http, emulator, "POST", "reset")
    assert await statuses() == first


async def test_configuration_from_the_environment_and_startup_subscription(log_dir):
    hook = await MetaWebhookReceiver("env-secret", "env-verify").start()
    port = free_port()
    process: ChildProcess | None = None
    try:
        process, base = start_emulator(log_dir, "whatsapp-emulator-env", "--phone-number-id", "111222333", env={
            "C4A_EMULATOR_PORT": str(port), "C4A_WHATSAPP_APP_SECRET": "env-secret",
            "C4A_WHATSAPP_ACCESS_TOKEN": "tok-a,tok-b", "C4A_EMULATOR_WEBHOOK_URL": hook.url,
            "C4A_EMULATOR_VERIFY_TOKEN": "env-verify"}, port=port)
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 10
            while not (await control(http, base, "GET", "health"))["subscribed"]:
                assert time.monotonic() < deadline, "the startup subscription never happened"
                await asyncio.sleep(0.05)
            status, reply, _ = await send(http, base, text("x"), phone_id="111222333",
                                          headers={"Authorization": "Bearer tok-b"})
            assert status == 200, reply
            status, reply, _ = await send(http, base, text("x"), phone_id="111222333")
            assert status == 401  # the default token is not configured here
            status, reply, _ = await send(http, base, text("x"), phone_id="999",
                                          headers={"Authorization": "Bearer tok-a"})
            assert (status, reply["error"]["error_subcode"]) == (400, 33)
            [failed] = await hook.wait_for(1)  # the 131047 status, signed with the configured secret
            assert failed.signature_ok
    finally:
        if process is not None:
            process.stop()
        await hook.stop()


async def test_a_business_number_reads_back_as_a_node_and_an_unknown_id_does_not(http, emulator):
    status, node, _ = await graph(http, emulator, "GET", PHONE_ID)
    assert status == 200 and node["id"] == PHONE_ID and node["platform_type"] == "CLOUD_API"
    status, error, _ = await graph(http, emulator, "GET", "not-a-number")
    assert status == 400 and error["error"]["code"] == 100
    status, _, _ = await graph(http, emulator, "GET", PHONE_ID, headers={"Authorization": "Bearer wrong"})
    assert status == 401
