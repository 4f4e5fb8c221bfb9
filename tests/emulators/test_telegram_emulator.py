"""The Telegram emulator as a client sees it: a real process on a loopback
port, spoken to over HTTP with the Bot API wire format."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.ports import free_port, wait_for_port
from tests.support.processes import ChildProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
BOT_ID = 7351240986
TOKEN = f"{BOT_ID}:AAGx3uD0iVtGk1fNq8ZLw5cR2yTbPe-hJ_m"
OTHER_TOKEN = "5550001111:AAFqWERTYuiopASDFghjklZXCVbnm123456"
USER = {"id": 90001, "first_name": "Ana", "username": "ana_c4a"}


def start_emulator(log_dir: Path, name: str, *extra: str) -> tuple[ChildProcess, str]:
    port = free_port()
    process = ChildProcess(
        name,
        [sys.executable, "-m", "connectors.emulators.telegram", "--host", "127.0.0.1", "--port", str(port),
         "--seed", "1234", *extra],
        log_dir,
        cwd=REPO_ROOT,
    )
    try:
        wait_for_port(port, timeout=20)
    except TimeoutError:
        process.stop()
        raise AssertionError(f"the emulator did not start:\n{process.log_text()}") from None
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def emulator(log_dir: Path) -> Any:
    process, base = start_emulator(log_dir, "telegram-emulator")
    try:
        yield base
    finally:
        process.stop()


@pytest.fixture
async def http(emulator: str) -> Any:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{emulator}/_emulator/reset") as response:
            assert response.status == 200
        yield session


async def bot_api(http: aiohttp.ClientSession, base: str, method: str, token: str = TOKEN,
                  **params: Any) -> tuple[int, dict[str, Any], Any]:
    async with http.post(f"{base}/bot{token}/{method}", json=params) as response:
        return response.status, await response.json(), response.headers


async def control(http: aiohttp.ClientSession, base: str, verb: str, path: str, body: Any = None) -> dict[str, Any]:
    async with http.request(verb, f"{base}/_emulator/{path}", json=body) as response:
        payload = await response.json()
        assert response.status == 200, payload
        return payload


async def inject(http: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> dict[str, Any]:
    return await control(http, base, "POST", f"bots/{TOKEN}/updates", body)


def png(width: int, height: int) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\x20\x80\xe0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# --- sending -------------------------------------------------------------------


async def test_send_message_answers_the_bot_api_shape_and_is_recorded(http, emulator):
    before = time.time()
    status, body, headers = await bot_api(http, emulator, "sendMessage", chat_id=USER["id"], text="hello /start")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    result = body["result"]
    assert body["ok"] is True
    assert result["message_id"] == 1
    assert result["from"] == {"id": BOT_ID, "is_bot": True, "first_name": "Chat4All Emulator",
                              "username": f"c4a_emulator_{BOT_ID}_bot"}
    assert result["chat"] == {"id": USER["id"], "type": "private"}
    assert before - 1 <= result["date"] <= time.time() + 1
    assert result["text"] == "hello /start"
    assert result["entities"] == [{"offset": 6, "length": 6, "type": "bot_command"}]

    # Form-encoded, a reply to the first message, to a supergroup: ids go up per chat.
    async with http.post(f"{emulator}/bot{TOKEN}/sendMessage",
                         data={"chat_id": str(USER["id"]), "text": "second", "reply_to_message_id": "1"}) as response:
        second = (await response.json())["result"]
    assert second["message_id"] == 2
    assert second["reply_to_message"]["message_id"] == 1
    assert second["reply_to_message"]["text"] == "hello /start"
    _, group_send, _ = await bot_api(http, emulator, "sendMessage", chat_id=-1001234567890, text="to the group")
    assert group_send["result"]["message_id"] == 1
    assert group_send["result"]["chat"] == {"id": -1001234567890, "type": "supergroup"}

    recorded = await control(http, emulator, "GET", f"requests?method=sendMessage&chat_id={USER['id']}")
    assert [r["params"]["text"] for r in recorded["requests"]] == ["hello /start", "second"]
    first = recorded["requests"][0]
    assert first["token"] == TOKEN and first["status"] == 200 and first["method"] == "sendMessage"
    assert first["params"]["chat_id"] == USER["id"]
    assert before <= first["received_at"] <= time.time()
    assert recorded["requests"][1]["params"]["chat_id"] == str(USER["id"])  # as the form sent it

    sent = await control(http, emulator, "GET", f"messages?chat_id={USER['id']}")
    assert [m["message_id"] for m in sent["messages"]] == [1, 2]
    assert sent["messages"][0]["message"] == result


async def test_wrong_token_is_401_and_unknown_method_is_404(http, emulator):
    for token in ("123", "123456:short", f"0{TOKEN}"):
        status, body, _ = await bot_api(http, emulator, "getMe", token=token)
        assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    status, body, _ = await bot_api(http, emulator, "sendTelepathy", chat_id=1, text="x")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    # Method names are case-insensitive, as on the real server.
    status, body, _ = await bot_api(http, emulator, "GETME")
    assert status == 200 and body["result"]["id"] == BOT_ID


async def test_only_configured_tokens_are_bots_when_tokens_are_given(log_dir):
    process, base = start_emulator(log_dir, "telegram-emulator-tokens", "--token", TOKEN)
    try:
        async with aiohttp.ClientSession() as http:
            status, body, _ = await bot_api(http, base, "getMe", token=OTHER_TOKEN)
            assert (status, body["description"]) == (401, "Unauthorized")
            status, body, _ = await bot_api(http, base, "getMe", token=TOKEN)
            assert status == 200 and body["result"]["id"] == BOT_ID
    finally:
        process.stop()


async def test_send_message_validation_errors(http, emulator):
    status, body, _ = await bot_api(http, emulator, "sendMessage", chat_id=42)
    assert (status, body) == (400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"})
    status, body, _ = await bot_api(http, emulator, "sendMessage", text="no chat")
    assert (status, body["description"]) == (400, "Bad Request: chat_id is empty")
    status, body, _ = await bot_api(http, emulator, "sendMessage", chat_id=42, text="x" * 4097)
    assert (status, body["description"]) == (400, "Bad Request: message is too long")
    status, body, _ = await bot_api(http, emulator, "sendMessage", chat_id=42, text="hi", reply_to_message_id=99)
    assert (status, body["description"]) == (400, "Bad Request: message to be replied not found")
    sent = await control(http, emulator, "GET", "messages")
    assert sent["count"] == 0


async def test_parse_modes_follow_telegram(http, emulator):
    status, body, _ = await bot_api(http, emulator, "sendMessage", chat_id=42, text="Version 1.0",
                                    parse_mode="MarkdownV2")
    assert status == 400
    assert body["description"] == (
        "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'"
    )
    status, body, _ = await bot_api(http, emulator, "sendMessage", chat_id=42, text="<b>Bold</b> &amp; <i>it</i>",
                                    parse_mode="HTML")
    assert status == 200
    assert body["result"]["text"] == "Bold & it"
    assert body["result"]["entities"] == [{"offset": 0, "length": 4, "type": "bold"},
                                          {"offset": 7, "length": 2, "type": "italic"}]
    status, body, _ = await bot_api(http, emulator, "sendMessage", chat_id=42, text="<blink>x</blink>",
                                    parse_mode="HTML")
    assert body["description"] == 'Bad Request: can\'t parse entities: Unsupported start tag "blink" at byte offset 0'


# --- rate limits and faults ----------------------------------------------------


async def test_per_chat_limit_answers_429_with_retry_after(http, emulator):
    for text in ("one", "two", "three"):  # a short burst is tolerated
        status, _, _ = await bot_api(http, emulator, "sendMessage", chat_id=USER["id"], text=text)
        assert status == 200
    status, body, headers = await bot_api(http, emulator, "sendMessage", chat_id=USER["id"], text="four")
    assert status == 429
    assert body == {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                    "parameters": {"retry_after": 1}}
    assert headers["Retry-After"] == "1"
    # Another chat is not limited by this one.
    status, _, _ = await bot_api(http, emulator, "sendMessage", chat_id=USER["id"] + 1, text="elsewhere")
    assert status == 200
    await asyncio.sleep(1.05)
    status, body, _ = await bot_api(http, emulator, "sendMessage", chat_id=USER["id"], text="four again")
    assert status == 200 and body["result"]["message_id"] == 4
    sent = await control(http, emulator, "GET", f"messages?chat_id={USER['id']}")
    assert [m["message"]["text"] for m in sent["messages"]] == ["one", "two", "three", "four again"]


async def test_group_limit_is_20_messages_a_minute(http, emulator):
    group = -1009876543210
    for n in range(20):
        status, body, _ = await bot_api(http, emulator, "sendMessage", chat_id=group, text=f"m{n}")
        assert status == 200, body
    status, body, headers = await bot_api(http, emulator, "sendMessage", chat_id=group, text="m20")
    assert status == 429
    assert body["parameters"] == {"retry_after": 3}
    assert headers["Retry-After"] == "3"
    sent = await control(http, emulator, "GET", f"messages?chat_id={group}")
    assert sent["count"] == 20


async def test_injected_throttling_answers_429(http, emulator):
    await control(http, emulator, "PUT", "faults", {"throttle_rate": 1.0, "retry_after": 7})
    status, body, headers = await bot_api(http, emulator, "sendMessage", chat_id=42, text="hi")
    assert status == 429
    assert body == {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
                    "parameters": {"retry_after": 7}}
    assert headers["Retry-After"] == "7"
    status, _, _ = await bot_api(http, emulator, "getMe")  # faults touch send methods only
    assert status == 200
    await control(http, emulator, "DELETE", "faults")
    status, body, _ = await bot_api(http, emulator, "sendMessage", chat_id=42, text="hi")
    assert status == 200 and body["result"]["message_id"] == 1


async def test_fail_next_gives_exactly_n_server_errors(http, emulator):
    await control(http, emulator, "PUT", "faults", {"fail_next": 2, "error_status": 503})
    statuses = []
    for _ in range(3):
        status, body, _ = await bot_api(http, emulator, "sendMessage", chat_id=42, text="retry me")
        statuses.append(status)
        if status == 503:
            assert body == {"ok": False, "error_code": 503, "description": "Service Unavailable"}
    assert statuses == [503, 503, 200]
    assert body["result"]["message_id"] == 1  # failed sends do not use up message ids
    recorded = await control(http, emulator, "GET", "requests?method=sendMessage")
    assert [r["status"] for r in recorded["requests"]] == [503, 503, 200]
    assert (await control(http, emulator, "GET", "messages"))["count"] == 1

    await control(http, emulator, "PUT", "faults", {"fail_next_429": 1, "retry_after": 2})
    status, body, headers = await bot_api(http, emulator, "sendMessage", chat_id=43, text="later")
    assert (status, body["parameters"], headers["Retry-After"]) == (429, {"retry_after": 2}, "2")
    status, _, _ = await bot_api(http, emulator, "sendMessage", chat_id=43, text="later")
    assert status == 200


async def test_fail_after_lets_that_many_sends_through_before_the_failures(http, emulator):
    """To fail the second file of a message sent as several messages, not the first."""
    await control(http, emulator, "PUT", "faults", {"fail_next": 1, "error_status": 502, "fail_after": 2})
    statuses = []
    for n in range(4):
        status, _, _ = await bot_api(http, emulator, "sendMessage", chat_id=6000 + n, text="x")
        statuses.append(status)
    assert statuses == [200, 200, 502, 200]
    faults = (await control(http, emulator, "GET", "faults"))["faults"]
    assert (faults["fail_next"], faults["fail_after"]) == (0, 0)

    # Alone it changes nothing; with a 429 it delays that one.
    await control(http, emulator, "PUT", "faults", {"fail_after": 1})
    status, _, _ = await bot_api(http, emulator, "sendMessage", chat_id=6010, text="x")
    assert status == 200
    await control(http, emulator, "PUT", "faults", {"fail_next_429": 1, "fail_after": 1, "retry_after": 2})
    first, _, _ = await bot_api(http, emulator, "sendMessage", chat_id=6011, text="x")
    second, body, _ = await bot_api(http, emulator, "sendMessage", chat_id=6012, text="x")
    assert (first, second, body["parameters"]) == (200, 429, {"retry_after": 2})
    async with http.put(f"{emulator}/_emulator/faults", json={"fail_after": -1}) as response:
        assert response.status == 400


async def test_random_faults_repeat_with_the_same_seed(http, emulator):
    async def statuses() -> list[int]:
        await control(http, emulator, "PUT", "faults", {"error_rate": 0.5, "seed": 42})
        found = []
        for n in range(12):
            status, _, _ = await bot_api(http, emulator, "sendMessage", chat_id=5000 + n, text="x")
            found.append(status)
        return found

    first = await statuses()
    assert set(first) == {200, 502}
    await control(http, emulator, "POST", "reset")
    assert await statuses() == first


async def test_dropped_connection_and_latency(http, emulator):
    await control(http, emulator, "PUT", "faults", {"drop_rate": 1.0})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await bot_api(http, emulator, "sendMessage", chat_id=42, text="lost")
    recorded = await control(http, emulator, "GET", "requests?method=sendMessage")
    assert [(r["dropped"], r["status"]) for r in recorded["requests"]] == [(True, None)]
    assert (await control(http, emulator, "GET", "messages"))["count"] == 0

    await control(http, emulator, "PUT", "faults", {"latency_ms": 250})
    started = time.monotonic()
    status, _, _ = await bot_api(http, emulator, "sendMessage", chat_id=42, text="slow")
    assert status == 200
    assert time.monotonic() - started >= 0.25


# --- updates: long polling -----------------------------------------------------


async def test_get_updates_long_poll_returns_as_soon_as_an_update_arrives(http, emulator):
    poll = asyncio.create_task(bot_api(http, emulator, "getUpdates", timeout=20))
    await asyncio.sleep(0.3)
    assert not poll.done()
    injected_at = time.monotonic()
    injected = await inject(http, emulator, {"from": USER, "text": "hi bot"})
    status, body, _ = await poll
    assert time.monotonic() - injected_at < 1.0
    assert status == 200
    [update] = body["result"]
    update_id = injected["update_id"]
    assert update["update_id"] == update_id
    message = update["message"]
    assert message["from"] == {"id": USER["id"], "is_bot": False, "first_name": "Ana", "username": "ana_c4a"}
    assert message["chat"] == {"id": USER["id"], "type": "private", "first_name": "Ana", "username": "ana_c4a"}
    assert message["text"] == "hi bot"
    assert message["message_id"] == 1
    assert abs(message["date"] - time.time()) < 5

    # Not confirmed yet: asked again, it comes again; offset = update_id + 1 confirms it.
    _, again, _ = await bot_api(http, emulator, "getUpdates")
    assert [u["update_id"] for u in again["result"]] == [update_id]
    second = await inject(http, emulator, {"from": USER, "text": "second"})
    assert second["update_id"] == update_id + 1
    _, after, _ = await bot_api(http, emulator, "getUpdates", offset=update_id + 1)
    assert [u["update_id"] for u in after["result"]] == [update_id + 1]
    _, info, _ = await bot_api(http, emulator, "getWebhookInfo")
    assert info["result"] == {"url": "", "has_custom_certificate": False, "pending_update_count": 1}
    _, done, _ = await bot_api(http, emulator, "getUpdates", offset=update_id + 2)
    assert done["result"] == []


async def test_a_second_poller_terminates_the_first_with_409(http, emulator):
    first = asyncio.create_task(bot_api(http, emulator, "getUpdates", timeout=10))
    await asyncio.sleep(0.2)
    second = asyncio.create_task(bot_api(http, emulator, "getUpdates", timeout=1))
    status, body, _ = await asyncio.wait_for(first, 5)
    assert (status, body["description"]) == (
        409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running")
    status, body, _ = await second
    assert (status, body["result"]) == (200, [])


async def test_duplicate_injection_delivers_the_same_update_id_twice(http, emulator):
    injected = await inject(http, emulator, {"from": USER, "text": "twice", "duplicate": 1})
    _, body, _ = await bot_api(http, emulator, "getUpdates")
    assert [u["update_id"] for u in body["result"]] == [injected["update_id"]] * 2
    assert body["result"][0] == body["result"][1] == injected["update"]


async def test_shuffled_batch_arrives_out_of_order_with_consecutive_ids(http, emulator):
    batch = await control(http, emulator, "POST", f"bots/{TOKEN}/updates:batch", {
        "updates": [{"from": USER, "text": f"n{n}"} for n in range(6)],
        "shuffle": True,
        "seed": 3,
    })
    ids = batch["update_ids"]
    assert ids == list(range(ids[0], ids[0] + 6))
    _, body, _ = await bot_api(http, emulator, "getUpdates")
    delivered = [u["update_id"] for u in body["result"]]
    assert sorted(delivered) == ids
    assert delivered != ids
    texts = {u["update_id"]: u["message"]["text"] for u in body["result"]}
    assert [texts[i] for i in ids] == [f"n{n}" for n in range(6)]


# --- updates: webhook ----------------------------------------------------------


async def test_get_updates_conflicts_with_a_webhook(http, emulator):
    status, body, _ = await bot_api(http, emulator, "setWebhook", url="http://127.0.0.1:9/hook")
    assert (status, body) == (200, {"ok": True, "result": True, "description": "Webhook was set"})
    status, body, _ = await bot_api(http, emulator, "getUpdates")
    assert (status, body) == (409, {
        "ok": False, "error_code": 409,
        "description": "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
                       "delete the webhook first",
    })
    status, body, _ = await bot_api(http, emulator, "deleteWebhook")
    assert body == {"ok": True, "result": True, "description": "Webhook was deleted"}
    status, body, _ = await bot_api(http, emulator, "getUpdates")
    assert (status, body) == (200, {"ok": True, "result": []})


async def test_set_webhook_checks_the_secret_token(http, emulator):
    status, body, _ = await bot_api(http, emulator, "setWebhook", url="http://127.0.0.1:9/h", secret_token="a+b=")
    assert (status, body["description"]) == (400, "Bad Request: secret token contains unallowed characters")
    await asyncio.sleep(1.05)  # setWebhook with a URL: at most once a second
    status, body, _ = await bot_api(http, emulator, "setWebhook", url="http://127.0.0.1:9/h", secret_token="a" * 257)
    assert (status, body["description"]) == (400, "Bad Request: secret token is too long")
    status, body, headers = await bot_api(http, emulator, "setWebhook", url="http://127.0.0.1:9/h")
    assert (status, body["parameters"], headers["Retry-After"]) == (429, {"retry_after": 1}, "1")


async def test_webhook_delivery_in_order_with_secret_and_retry(http, emulator):
    received: list[tuple[str | None, int, str]] = []

    async def hook(request: web.Request) -> web.Response:
        update = await request.json()
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), update["update_id"],
                         request.content_type))
        return web.Response(status=500 if len(received) == 1 else 200)

    receiver = web.Application()
    receiver.router.add_post("/telegram/hook", hook)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        status, body, _ = await bot_api(http, emulator, "setWebhook", url=f"http://127.0.0.1:{port}/telegram/hook",
                                        secret_token="s3cret_Token-1")
        assert status == 200, body
        batch = await control(http, emulator, "POST", f"bots/{TOKEN}/updates:batch",
                              {"updates": [{"from": USER, "text": f"w{n}"} for n in range(3)]})
        ids = batch["update_ids"]
        deadline = time.monotonic() + 10
        while len(received) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert [update_id for _, update_id, _ in received] == [ids[0], ids[0], ids[1], ids[2]]
        assert {secret for secret, _, _ in received} == {"s3cret_Token-1"}
        assert {content_type for _, _, content_type in received} == {"application/json"}

        _, info, _ = await bot_api(http, emulator, "getWebhookInfo")
        result = info["result"]
        assert result["url"] == f"http://127.0.0.1:{port}/telegram/hook"
        assert result["pending_update_count"] == 0
        assert result["last_error_message"] == "Wrong response from the webhook: 500 Internal Server Error"
        assert abs(result["last_error_date"] - time.time()) < 10
        deliveries = await control(http, emulator, "GET", f"bots/{TOKEN}/webhook-deliveries")
        assert [(d["update_id"], d["attempt"], d["status"]) for d in deliveries["deliveries"]] == [
            (ids[0], 1, 500), (ids[0], 2, 200), (ids[1], 1, 200), (ids[2], 1, 200)]
    finally:
        await bot_api(http, emulator, "deleteWebhook")
        await runner.cleanup()


# --- files ---------------------------------------------------------------------


async def test_multipart_send_document_records_size_and_sha256(http, emulator):
    payload = random.Random(7).randbytes(300_000)
    form = aiohttp.FormData()
    form.add_field("chat_id", str(USER["id"]))
    form.add_field("caption", "the report")
    form.add_field("document", payload, filename="report.pdf", content_type="application/pdf")
    async with http.post(f"{emulator}/bot{TOKEN}/sendDocument", data=form) as response:
        assert response.status == 200
        result = (await response.json())["result"]
    document = result["document"]
    assert document["file_name"] == "report.pdf"
    assert document["mime_type"] == "application/pdf"
    assert document["file_size"] == len(payload)
    assert result["caption"] == "the report"

    recorded = await control(http, emulator, "GET", "requests?method=sendDocument")
    [request] = recorded["requests"]
    assert request["params"]["document"] == {"filename": "report.pdf", "size": len(payload),
                                             "sha256": hashlib.sha256(payload).hexdigest(),
                                             "content_type": "application/pdf"}
    assert request["params"]["chat_id"] == str(USER["id"])

    _, file_body, _ = await bot_api(http, emulator, "getFile", file_id=document["file_id"])
    file = file_body["result"]
    assert file["file_size"] == len(payload) and file["file_unique_id"] == document["file_unique_id"]
    async with http.get(f"{emulator}/file/bot{TOKEN}/{file['file_path']}") as response:
        assert response.status == 200
        assert await response.read() == payload

    # Sent again by file_id: the same file, no upload.
    status, body, _ = await bot_api(http, emulator, "sendDocument", chat_id=USER["id"], document=document["file_id"])
    assert status == 200 and body["result"]["document"]["file_unique_id"] == document["file_unique_id"]
    status, body, _ = await bot_api(http, emulator, "sendDocument", chat_id=USER["id"], document="no-such-file")
    assert (status, body["description"]) == (400, "Bad Request: wrong file identifier/HTTP URL specified")


async def test_photos_must_be_images_and_uploads_over_50_mb_are_refused(http, emulator):
    form = aiohttp.FormData()
    form.add_field("chat_id", "42")
    form.add_field("photo", png(1000, 500), filename="chart.png", content_type="image/png")
    async with http.post(f"{emulator}/bot{TOKEN}/sendPhoto", data=form) as response:
        photo = (await response.json())["result"]["photo"]
    assert [(size["width"], size["height"]) for size in photo] == [(90, 45), (320, 160), (800, 400), (1000, 500)]

    form = aiohttp.FormData()
    form.add_field("chat_id", "42")
    form.add_field("photo", b"not an image", filename="x.png", content_type="image/png")
    async with http.post(f"{emulator}/bot{TOKEN}/sendPhoto", data=form) as response:
        assert (response.status, (await response.json())["description"]) == (400, "Bad Request: IMAGE_PROCESS_FAILED")

    form = aiohttp.FormData()
    form.add_field("chat_id", "42")
    form.add_field("document", b"\0" * (50 * 1024 * 1024 + 1), filename="big.bin")
    async with http.post(f"{emulator}/bot{TOKEN}/sendDocument", data=form) as response:
        assert response.status == 413
        assert await response.json() == {"ok": False, "error_code": 413, "description": "Request Entity Too Large"}
    assert (await control(http, emulator, "GET", "messages"))["count"] == 1


async def test_photo_uploads_are_limited_to_10_mb_other_files_to_50_mb(http, emulator):
    """Telegram's multipart limits: a photo above 10 MB is not saved, the same bytes as a
    document go (documents are refused above 50 MB, see above)."""
    image = png(40, 30)
    exactly_10_mb = image + b"\0" * (10 * 1024 * 1024 - len(image))
    for data, expected in ((exactly_10_mb, 200), (exactly_10_mb + b"\0", 400)):
        form = aiohttp.FormData()
        form.add_field("chat_id", "42")
        form.add_field("photo", data, filename="big.png", content_type="image/png")
        async with http.post(f"{emulator}/bot{TOKEN}/sendPhoto", data=form) as response:
            body = await response.json()
        assert response.status == expected, body
    assert body == {"ok": False, "error_code": 400, "description": "Bad Request: PHOTO_SAVE_FILE_INVALID"}

    form = aiohttp.FormData()
    form.add_field("chat_id", "42")
    form.add_field("document", exactly_10_mb + b"\0", filename="big.png", content_type="image/png")
    async with http.post(f"{emulator}/bot{TOKEN}/sendDocument", data=form) as response:
        assert response.status == 200
        assert (await response.json())["result"]["document"]["file_size"] == 10 * 1024 * 1024 + 1
    sent = await control(http, emulator, "GET", "messages")
    assert [(m["method"], m["media"]["size"]) for m in sent["messages"]] == [
        ("sendPhoto", 10 * 1024 * 1024), ("sendDocument", 10 * 1024 * 1024 + 1)]


async def test_injected_media_can_be_downloaded_up_to_20_mb(http, emulator):
    image = png(64, 48)
    injected = await inject(http, emulator, {
        "from": USER, "caption": "look", "photo": {"bytes_b64": base64.b64encode(image).decode()},
    })
    [photo] = injected["update"]["message"]["photo"]
    assert (photo["width"], photo["height"], photo["file_size"]) == (64, 48, len(image))
    _, body, _ = await bot_api(http, emulator, "getFile", file_id=photo["file_id"])
    async with http.get(f"{emulator}/file/bot{TOKEN}/{body['result']['file_path']}") as response:
        assert await response.read() == image

    big = await inject(http, emulator, {"from": USER, "document": {"size": 25 * 1024 * 1024, "file_name": "a.zip"}})
    status, body, _ = await bot_api(http, emulator, "getFile", file_id=big["update"]["message"]["document"]["file_id"])
    assert (status, body["description"]) == (400, "Bad Request: file is too big")


async def test_media_by_url_is_fetched_only_from_loopback(http, emulator):
    small = random.Random(11).randbytes(1000)

    async def small_file(_: web.Request) -> web.Response:
        return web.Response(body=small, content_type="application/pdf")

    async def huge_file(_: web.Request) -> web.Response:
        return web.Response(body=b"\0" * (20 * 1024 * 1024 + 1))

    async def big_photo(_: web.Request) -> web.Response:
        image = png(40, 30)
        return web.Response(body=image + b"\0" * (5 * 1024 * 1024 + 1 - len(image)), content_type="image/png")

    served = web.Application()
    served.router.add_get("/files/small.pdf", small_file)
    served.router.add_get("/files/huge.bin", huge_file)
    served.router.add_get("/files/big.png", big_photo)
    runner = web.AppRunner(served, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        status, body, _ = await bot_api(http, emulator, "sendDocument", chat_id=42,
                                        document=f"http://127.0.0.1:{port}/files/small.pdf")
        assert status == 200, body
        assert body["result"]["document"]["file_size"] == len(small)
        assert body["result"]["document"]["file_name"] == "small.pdf"
        assert body["result"]["document"]["mime_type"] == "application/pdf"  # as the URL served it
        _, file_body, _ = await bot_api(http, emulator, "getFile", file_id=body["result"]["document"]["file_id"])
        async with http.get(f"{emulator}/file/bot{TOKEN}/{file_body['result']['file_path']}") as response:
            assert await response.read() == small  # what it fetched is what it keeps
        for url in (f"http://127.0.0.1:{port}/files/huge.bin", f"http://127.0.0.1:{port}/files/missing"):
            status, body, _ = await bot_api(http, emulator, "sendDocument", chat_id=43, document=url)
            assert (status, body["description"]) == (400, "Bad Request: failed to get HTTP URL content")
        # By URL photos stop at 5 MB (documents at 20 MB).
        status, body, _ = await bot_api(http, emulator, "sendPhoto", chat_id=43,
                                        photo=f"http://127.0.0.1:{port}/files/big.png")
        assert (status, body["description"]) == (400, "Bad Request: failed to get HTTP URL content")
        # Not loopback: recorded, never fetched.
        status, body, _ = await bot_api(http, emulator, "sendPhoto", chat_id=44, photo="https://example.com/cat.jpg")
        assert status == 200 and "file_size" not in body["result"]["photo"][-1]
        sent = await control(http, emulator, "GET", "messages")
        media = [(m["chat_id"], m["media"]["source"], m["media"]["size"], m["media"]["sha256"]) for m in sent["messages"]]
        assert media == [(42, "url", len(small), hashlib.sha256(small).hexdigest()), (44, "url", None, None)]
        assert sent["messages"][1]["media"]["url"] == "https://example.com/cat.jpg"
    finally:
        await runner.cleanup()


async def test_a_webhook_answer_naming_a_method_is_executed(http, emulator):
    async def hook(request: web.Request) -> web.Response:
        update = await request.json()
        chat_id = update["message"]["chat"]["id"]
        return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": "pong"})

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await bot_api(http, emulator, "setWebhook", url=f"http://127.0.0.1:{port}/hook")
        await inject(http, emulator, {"from": USER, "text": "ping"})
        deadline = time.monotonic() + 5
        sent: dict[str, Any] = {"messages": []}
        while not sent["messages"] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            sent = await control(http, emulator, "GET", f"messages?chat_id={USER['id']}")
        assert [(m["message"]["text"], m["message"]["message_id"]) for m in sent["messages"]] == [("pong", 2)]
        recorded = await control(http, emulator, "GET", "requests?method=sendMessage")
        assert [(r["via"], r["status"]) for r in recorded["requests"]] == [("webhook_reply", 200)]
    finally:
        await bot_api(http, emulator, "deleteWebhook")
        await runner.cleanup()


async def test_allowed_updates_and_blocked_chats(http, emulator):
    member_update = {"chat_member": {"chat": {"id": -4001, "type": "group", "title": "G"}, "from": USER, "date": 1}}
    injected = await inject(http, emulator, member_update)
    assert injected["queued"] is False  # chat_member is not sent unless asked for
    status, body, _ = await bot_api(http, emulator, "getUpdates", allowed_updates=["chat_member"])
    assert (status, body["result"]) == (200, [])
    assert (await inject(http, emulator, member_update))["queued"] is True
    assert (await inject(http, emulator, {"from": USER, "text": "filtered out"}))["queued"] is False
    _, body, _ = await bot_api(http, emulator, "getUpdates")
    assert [list(u)[1] for u in body["result"]] == ["chat_member"]

    await control(http, emulator, "POST", f"bots/{TOKEN}/chats", {"id": USER["id"], "blocked": True})
    status, body, _ = await bot_api(http, emulator, "sendMessage", chat_id=USER["id"], text="anyone?")
    assert (status, body) == (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})
