"""The Bot API methods the emulator implements, with the real server's checks,
answers and error descriptions.

Send methods: sendMessage, sendPhoto, sendDocument, sendVideo, sendAudio,
sendVoice. Others: getMe, sendChatAction, editMessageText, deleteMessage,
getUpdates, setWebhook, deleteWebhook, getWebhookInfo, getFile. Any other
method is answered 404 Not Found, like an unknown method on the real server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp

from .config import (
    CAPTION_LIMIT_CHARS,
    CONFLICT_PAUSE_S,
    DOWNLOAD_LIMIT_BYTES,
    LONG_POLL_BATCH_S,
    LONG_POLL_MAX_TIMEOUT_S,
    TEXT_LIMIT_CHARS,
    UPLOAD_PHOTO_LIMIT_BYTES,
    URL_LIMIT_BYTES,
    URL_PHOTO_LIMIT_BYTES,
)
from .formatting import format_text
from .media import StoredFile, image_info
from .params import BotApiError, Params, Upload, bad_request, too_many_requests
from .state import UPDATE_TYPES, Bot, EmulatorState, LongPoll, Webhook

_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]*")
_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
_CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclasses.dataclass
class Answer:
    """A result with the optional `description` some methods add (setWebhook...)."""

    result: Any
    description: str | None = None


@dataclasses.dataclass
class Call:
    state: EmulatorState
    bot: Bot
    params: Params
    method: str
    http: Callable[[], aiohttp.ClientSession]
    restart_webhook: Callable[[Bot], None]
    # The file a send method sent (url, size, sha256...), for the control API.
    media: dict[str, Any] | None = None


Handler = Callable[[Call], Awaitable[Any]]


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    handler: Handler
    # Send methods are the ones faults and flood limits apply to.
    is_send: bool = False


# --- shared pieces -----------------------------------------------------------


def _chat_id(call: Call) -> int:
    raw = call.params.str("chat_id").strip()
    if not raw:
        raise bad_request("chat_id is empty")
    if raw.startswith("@"):
        if not _USERNAME.fullmatch(raw[1:]):
            raise bad_request("chat not found")
        return call.bot.chat_id_for_username(raw[1:])
    try:
        chat_id = int(raw)
    except ValueError:
        raise bad_request("chat not found") from None
    if chat_id == 0:
        raise bad_request("chat not found")
    return chat_id


def _check_can_write(chat: dict[str, Any]) -> None:
    """403 for chats the control API marked blocked (by the user) or kicked (the bot)."""
    if chat.get("blocked"):
        raise BotApiError(403, "Forbidden: bot was blocked by the user")
    if chat.get("kicked"):
        if chat.get("type") == "channel":
            raise BotApiError(403, "Forbidden: bot is not a member of the channel chat")
        kind = "supergroup" if chat.get("type") == "supergroup" else "group"
        raise BotApiError(403, f"Forbidden: bot was kicked from the {kind} chat")


def _reply_target(call: Call, chat_id: int) -> dict[str, Any] | None:
    """The message being replied to (None when not replying)."""
    params = call.params
    message_id = params.int("reply_to_message_id", 0)
    allow_without = params.bool("allow_sending_without_reply")
    reply_parameters = params.json("reply_parameters")
    if isinstance(reply_parameters, dict):
        message_id = Params(reply_parameters).int("message_id", 0)
        allow_without = bool(reply_parameters.get("allow_sending_without_reply", allow_without))
    if message_id <= 0:
        return None
    if not call.bot.message_exists(chat_id, message_id):
        if allow_without:
            return None
        raise bad_request("message to be replied not found")
    replied = call.bot.messages.get((chat_id, message_id))
    if replied is None:
        return {"message_id": message_id, "chat": call.bot.public_chat(chat_id), "date": int(time.time())}
    return {key: value for key, value in replied.items() if key != "reply_to_message"}


def _formatted(call: Call, field: str, entities_field: str, limit: int, too_long: str) -> tuple[str, list[Any]]:
    text, entities = format_text(call.params.str(field), call.params.str("parse_mode"), call.params.json(entities_field))
    if len(text) > limit:
        raise bad_request(too_long)
    return text, entities


def _deliver(call: Call, chat_id: int, content: dict[str, Any], reply: dict[str, Any] | None,
             before_commit: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Flood control, then the message is sent: it gets its id and is recorded."""
    bot = call.bot
    chat = bot.chat(chat_id)
    _check_can_write(chat)
    retry_after = call.state.flood.check_send(bot.token, chat_id, chat.get("type") == "private")
    if retry_after:
        raise too_many_requests(retry_after)
    if before_commit is not None:
        content = {**content, **before_commit()}
    public_chat = bot.public_chat(chat_id)
    message: dict[str, Any] = {"message_id": bot.next_message_id(chat_id)}
    if chat.get("type") == "channel":
        message["sender_chat"] = public_chat
    else:
        message["from"] = bot.user()
    message["chat"] = public_chat
    message["date"] = int(time.time())
    thread_id = call.params.int("message_thread_id", 0)
    if thread_id > 0 and chat.get("is_forum"):
        message["message_thread_id"] = thread_id
        message["is_topic_message"] = True
    if reply is not None:
        message["reply_to_message"] = reply
    if call.params.bool("protect_content"):
        message["has_protected_content"] = True
    message.update(content)
    call.state.record_sent(bot, call.method, message, call.media)
    return message


# --- sending -----------------------------------------------------------------


async def send_message(call: Call) -> Any:
    if call.params.str("text") == "":
        raise bad_request("message text is empty")
    text, entities = _formatted(call, "text", "entities", TEXT_LIMIT_CHARS, "message is too long")
    if text == "":
        raise bad_request("message text is empty")
    chat_id = _chat_id(call)
    reply = _reply_target(call, chat_id)
    content: dict[str, Any] = {"text": text}
    if entities:
        content["entities"] = entities
    return _deliver(call, chat_id, content, reply)


@dataclasses.dataclass
class _MediaSource:
    """A file to send, resolved but not stored yet (stored only if the send goes)."""

    kind: str
    existing: StoredFile | None = None
    data: bytes | None = None
    sha256: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    url: str | None = None
    image: tuple[int, int, str] | None = None


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOCAL_HOSTS or host.startswith("127.")


async def _fetch_local(call: Call, url: str, limit: int) -> tuple[bytes, str | None]:
    """Bytes and Content-Type behind a loopback URL (the emulator never fetches from the internet)."""
    try:
        timeout = aiohttp.ClientTimeout(total=30)
        async with call.http().get(url, timeout=timeout, allow_redirects=True) as response:
            if response.status != 200:
                raise bad_request("failed to get HTTP URL content")
            if response.content_length is not None and response.content_length > limit:
                raise bad_request("failed to get HTTP URL content")
            chunks = []
            size = 0
            async for chunk in response.content.iter_chunked(256 * 1024):
                size += len(chunk)
                if size > limit:
                    raise bad_request("failed to get HTTP URL content")
                chunks.append(chunk)
            content_type = response.headers.get("Content-Type")
            return b"".join(chunks), content_type.split(";", 1)[0].strip() if content_type else None
    except (aiohttp.ClientError, asyncio.TimeoutError):
        raise bad_request("failed to get HTTP URL content") from None


def _check_photo(image: tuple[int, int, str] | None, error: str) -> None:
    if image is None:
        raise bad_request(error)
    width, height, _ = image
    if width <= 0 or height <= 0 or width + height > 10_000 or max(width, height) > 20 * min(width, height):
        raise bad_request("PHOTO_INVALID_DIMENSIONS")


async def _media_source(call: Call, kind: str) -> _MediaSource:
    params = call.params
    upload: Upload | None = params.uploads.get(kind)
    value = params.str(kind)
    if upload is None and value.startswith("attach://"):
        upload = params.uploads.get(value[len("attach://"):])
    if upload is not None:
        if upload.size == 0:
            raise bad_request("file must be non-empty")
        source = _MediaSource(kind, data=upload.data, sha256=upload.sha256, file_name=upload.filename,
                              mime_type=upload.content_type)
        if kind == "photo":
            if upload.size > UPLOAD_PHOTO_LIMIT_BYTES:
                # Telegram saves no photo above 10 MB (a document may be up to 50 MB).
                raise bad_request("PHOTO_SAVE_FILE_INVALID")
            source.image = image_info(upload.data)
            _check_photo(source.image, "IMAGE_PROCESS_FAILED")
        return source
    if value == "":
        raise bad_request(f"there is no {kind} in the request")
    if re.match(r"https?://", value, re.IGNORECASE):
        path_name = unquote(urlsplit(value).path.rsplit("/", 1)[-1]) or None
        source = _MediaSource(kind, url=value, file_name=path_name)
        if _is_local(value):
            limit = URL_PHOTO_LIMIT_BYTES if kind == "photo" else URL_LIMIT_BYTES
            source.data, source.mime_type = await _fetch_local(call, value, limit)
            if not source.data:
                raise bad_request("failed to get HTTP URL content")
            if kind == "photo":
                source.image = image_info(source.data)
                _check_photo(source.image, "wrong type of the web page content")
        return source
    stored = call.bot.files.by_id.get(value)
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if (stored.kind == "photo") != (kind == "photo"):
        raise bad_request("type of file mismatch")
    return _MediaSource(kind, existing=stored)


def _store(call: Call, source: _MediaSource) -> StoredFile:
    if source.existing is not None:
        return source.existing
    params = call.params
    files = call.bot.files
    if source.kind == "photo":
        width, height, ext = source.image or (1280, 720, "jpg")
        stored = files.add_photo(data=source.data, width=width, height=height, ext=ext, sha256=source.sha256,
                                 source_url=source.url)
    else:
        stored = files.add(
            source.kind,
            data=source.data,
            sha256=source.sha256,
            file_name=source.file_name if source.kind != "voice" else None,
            mime_type=source.mime_type,
            width=params.int("width", 0) or None,
            height=params.int("height", 0) or None,
            duration=params.int("duration", 0),
            source_url=source.url,
        )
    call.state.hold_bytes(stored)
    return stored


def _send_media(kind: str) -> Handler:
    async def send(call: Call) -> Any:
        source = await _media_source(call, kind)
        caption, caption_entities = _formatted(
            call, "caption", "caption_entities", CAPTION_LIMIT_CHARS, "message caption is too long",
        )
        chat_id = _chat_id(call)
        reply = _reply_target(call, chat_id)

        def content() -> dict[str, Any]:
            stored = _store(call, source)
            call.media = {
                "kind": kind,
                "source": "file_id" if source.existing else "url" if source.url else "upload",
                "url": stored.source_url,
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": stored.file_name,
                "size": stored.size,
                "sha256": stored.sha256,
            }
            media = stored.as_media()
            if kind == "audio" and isinstance(media, dict):
                for field in ("performer", "title"):
                    if call.params.has(field):
                        media[field] = call.params.str(field)
            fields: dict[str, Any] = {kind: media}
            if caption:
                fields["caption"] = caption
                if caption_entities:
                    fields["caption_entities"] = caption_entities
            return fields

        return _deliver(call, chat_id, {}, reply, before_commit=content)

    return send


async def send_chat_action(call: Call) -> Any:
    chat_id = _chat_id(call)
    action = call.params.str("action").lower()
    if action not in _CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    _check_can_write(call.bot.chat(chat_id))
    return True


async def edit_message_text(call: Call) -> Any:
    if call.params.has("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")
    if call.params.str("text") == "":
        raise bad_request("message text is empty")
    text, entities = _formatted(call, "text", "entities", TEXT_LIMIT_CHARS, "MESSAGE_TOO_LONG")
    if text == "":
        raise bad_request("message text is empty")
    chat_id = _chat_id(call)
    message_id = call.params.int("message_id", 0)
    if message_id <= 0:
        raise bad_request("message identifier is not specified")
    bot = call.bot
    message = bot.messages.get((chat_id, message_id)) if bot.message_exists(chat_id, message_id) else None
    if message is None:
        raise bad_request("message to edit not found")
    if message.get("from", {}).get("id") != bot.id and "sender_chat" not in message:
        raise bad_request("message can't be edited")
    if "text" not in message:
        raise bad_request("there is no text in the message to edit")
    if message["text"] == text and message.get("entities", []) == entities:
        raise bad_request(
            "message is not modified: specified new message content and reply markup are exactly the same "
            "as a current content and reply markup of the message"
        )
    edited = {key: value for key, value in message.items() if key != "entities"}
    edited["text"] = text
    edited["edit_date"] = int(time.time())
    if entities:
        edited["entities"] = entities
    bot.keep_message(edited, call.state.config.message_cap)
    return edited


async def delete_message(call: Call) -> Any:
    chat_id = _chat_id(call)
    message_id = call.params.int("message_id", 0)
    bot = call.bot
    if not bot.message_exists(chat_id, message_id):
        raise bad_request("message to delete not found")
    bot.deleted.add((chat_id, message_id))
    bot.messages.pop((chat_id, message_id), None)
    return True


# --- identity and files --------------------------------------------------------


async def get_me(call: Call) -> Any:
    return {
        **call.bot.user(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


async def get_file(call: Call) -> Any:
    file_id = call.params.str("file_id").strip()
    if not file_id:
        raise bad_request("invalid file_id")
    stored = call.bot.files.by_id.get(file_id)
    if stored is None:
        raise bad_request("wrong file_id or the file is temporarily unavailable")
    if stored.size is not None and stored.size > DOWNLOAD_LIMIT_BYTES:
        raise bad_request("file is too big")
    return stored.as_api_file()


# --- updates -------------------------------------------------------------------


async def _conflict(bot: Bot, description: str) -> BotApiError:
    """A 409, paused when another 409 went out less than 3 s ago (real server behaviour)."""
    now = time.monotonic()
    if now < bot.next_conflict_at:
        await asyncio.sleep(CONFLICT_PAUSE_S)
    else:
        bot.next_conflict_at = now + CONFLICT_PAUSE_S
    return BotApiError(409, description)


async def get_updates(call: Call) -> Any:
    bot = call.bot
    if bot.webhook is not None:
        raise await _conflict(
            bot,
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the "
            "webhook first",
        )
    params = call.params
    offset = params.int("offset", 0)
    limit = params.int("limit", 100, 1, 100)
    timeout = params.int("timeout", 0, 0, LONG_POLL_MAX_TIMEOUT_S)
    if params.has("allowed_updates"):
        bot.set_allowed_updates(params.json("allowed_updates"))
    now = time.monotonic()
    previous_offset, previous_at = bot.previous_get_updates
    if (call.state.flood.limits.enabled and call.state.flood.limits.get_updates_min_timeout
            and offset == previous_offset and timeout < 3 and now < previous_at + 3.0):
        timeout = 3
    bot.previous_get_updates = (offset, now)

    bot.confirm(offset)
    updates = bot.pending(limit)
    if updates or timeout == 0:
        return updates

    if bot.long_poll is not None:
        bot.long_poll.wake("get_updates")
    poll = LongPoll()
    bot.long_poll = poll
    try:
        done, _ = await asyncio.wait({poll.future}, timeout=timeout)
        reason = poll.future.result() if done else "timeout"
    finally:
        if bot.long_poll is poll:
            bot.long_poll = None
    if reason == "update":
        await asyncio.sleep(LONG_POLL_BATCH_S)
    elif reason == "get_updates":
        raise await _conflict(
            bot, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
        )
    elif reason == "set_webhook":
        raise await _conflict(bot, "Conflict: terminated by setWebhook request")
    elif reason in ("reset", "shutdown"):
        return []
    if bot.webhook is not None:
        return []
    return bot.pending(limit)


def _webhook_ip(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return "127.0.0.1" if host.lower() == "localhost" else "<unknown>"


async def set_webhook(call: Call) -> Any:
    bot = call.bot
    params = call.params
    url = params.str("url").strip() if call.method == "setWebhook" else ""
    new: Webhook | None = None
    if url:
        retry_after = call.state.flood.check_set_webhook(bot.token)
        if retry_after:
            raise too_many_requests(retry_after)
        secret = params.str("secret_token")
        if len(secret) > 256:
            raise bad_request("secret token is too long")
        if not _SECRET_TOKEN.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        # Emulator relaxation: plain http and any port are accepted (the real
        # platform wants HTTPS on 443, 80, 88 or 8443 and a public address).
        full_url = url if "://" in url else "https://" + url
        parts = urlsplit(full_url)
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise bad_request("invalid webhook URL specified") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise bad_request("invalid webhook URL specified")
        new = Webhook(full_url, secret, params.int("max_connections", 40, 1, 100), _webhook_ip(parts.hostname))
    drop_pending = params.bool("drop_pending_updates")

    current = bot.webhook
    if not drop_pending and ((current is None and new is None) or (current and new and current.same_as(new))):
        if params.has("allowed_updates"):
            bot.set_allowed_updates(params.json("allowed_updates"))
        return Answer(True, "Webhook is already set" if new else "Webhook is already deleted")

    if new is not None and bot.long_poll is not None:
        bot.long_poll.wake("set_webhook")
    if drop_pending:
        bot.drop_pending()
    bot.webhook = new
    bot.last_webhook_error_date = 0
    bot.last_webhook_error_message = ""
    if new is not None and params.has("allowed_updates"):
        bot.set_allowed_updates(params.json("allowed_updates"))
    call.restart_webhook(bot)
    if new is not None:
        return Answer(True, "Webhook was set")
    return Answer(True, "Webhook was deleted" if current is not None else "Webhook is already deleted")


async def get_webhook_info(call: Call) -> Any:
    bot = call.bot
    webhook = bot.webhook
    info: dict[str, Any] = {
        "url": webhook.url if webhook else "",
        "has_custom_certificate": False,
        "pending_update_count": len(bot.queue),
    }
    if bot.last_webhook_error_date:
        info["last_error_date"] = bot.last_webhook_error_date
        info["last_error_message"] = bot.last_webhook_error_message
    if webhook is not None:
        info["max_connections"] = webhook.max_connections
        info["ip_address"] = webhook.ip_address
    if bot.allowed_updates is not None:
        info["allowed_updates"] = [kind for kind in UPDATE_TYPES if kind in bot.allowed_updates]
    return info


_ALL = (
    Method("getMe", get_me),
    Method("sendMessage", send_message, is_send=True),
    Method("sendPhoto", _send_media("photo"), is_send=True),
    Method("sendDocument", _send_media("document"), is_send=True),
    Method("sendVideo", _send_media("video"), is_send=True),
    Method("sendAudio", _send_media("audio"), is_send=True),
    Method("sendVoice", _send_media("voice"), is_send=True),
    Method("sendChatAction", send_chat_action),
    Method("editMessageText", edit_message_text),
    Method("deleteMessage", delete_message),
    Method("getUpdates", get_updates),
    Method("setWebhook", set_webhook),
    Method("deleteWebhook", set_webhook),
    Method("getWebhookInfo", get_webhook_info),
    Method("getFile", get_file),
)

# Method names are case-insensitive on the real server.
METHODS: dict[str, Method] = {method.name.lower(): method for method in _ALL}
