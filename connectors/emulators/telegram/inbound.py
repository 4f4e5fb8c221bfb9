"""Inbound updates injected by tests: what a user would have sent the bot.

A body is either a full Update object (any Update field such as "message" or
"callback_query") or a shorthand for a message:

    {"chat": {"id": -100123, "type": "supergroup", "title": "Team"},
     "from": {"id": 42, "first_name": "Ana", "username": "ana"},
     "text": "hello", "reply_to_message_id": 7, "message_thread_id": 3,
     "photo": {"bytes_b64": "..."} | "document": {"bytes_b64": "...", "file_name": "a.pdf"},
     "caption": "...", "update_type": "message" | "edited_message" | "channel_post" | ...}

The emulator assigns update_id (consecutive per bot), and fills message_id,
date, `from.is_bot: false` and the automatic entities where they are missing.
Media given as bytes are stored so getFile and the file download work;
`{"size": N}` without bytes makes a file of that size with nothing to download
(for testing the 20 MB download limit).
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from .formatting import format_text
from .media import StoredFile, image_info
from .state import UPDATE_TYPES, Bot, EmulatorState, chat_type_for

_MESSAGE_UPDATES = ("message", "edited_message", "channel_post", "edited_channel_post", "business_message",
                    "edited_business_message")
_MEDIA_KINDS = ("photo", "document", "video", "audio", "voice")


class InjectionError(ValueError):
    pass


def build_update(state: EmulatorState, bot: Bot, body: dict[str, Any]) -> dict[str, Any]:
    """The Update object for an injected body, with its update_id assigned."""
    if not isinstance(body, dict):
        raise InjectionError("an update must be a JSON object")
    update_types = [key for key in body if key in UPDATE_TYPES]
    if update_types and "chat" not in body and "text" not in body:
        update = _full_update(state, bot, body, update_types)
    else:
        update = _shorthand_update(state, bot, body)
    return {"update_id": bot.take_update_id(), **update}


def update_type(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


def _full_update(state: EmulatorState, bot: Bot, body: dict[str, Any], update_types: list[str]) -> dict[str, Any]:
    if len(update_types) != 1:
        raise InjectionError(f"an Update carries exactly one update field, got {update_types}")
    kind = update_types[0]
    payload = body[kind]
    if kind in _MESSAGE_UPDATES:
        if not isinstance(payload, dict) or not isinstance(payload.get("chat"), dict):
            raise InjectionError(f"{kind} needs a chat object")
        payload = _complete_message(state, bot, dict(payload), edited=kind.startswith("edited"))
    elif kind == "callback_query" and isinstance(payload, dict):
        payload = dict(payload)
        if isinstance(payload.get("from"), dict):
            payload["from"] = _user(payload["from"])
        if isinstance(payload.get("message"), dict) and isinstance(payload["message"].get("chat"), dict):
            payload["message"] = _complete_message(state, bot, dict(payload["message"]), edited=False)
    return {kind: payload}


def _user(user: dict[str, Any]) -> dict[str, Any]:
    """A User object: every update carries from.is_bot (false unless said otherwise)."""
    rest = {key: value for key, value in user.items() if key not in ("id", "is_bot")}
    return {"id": user.get("id"), "is_bot": bool(user.get("is_bot", False)), **rest}


def _complete_message(state: EmulatorState, bot: Bot, message: dict[str, Any], edited: bool) -> dict[str, Any]:
    chat = dict(message["chat"])
    if not isinstance(chat.get("id"), int):
        raise InjectionError("chat.id must be an integer")
    chat.setdefault("type", chat_type_for(chat["id"]))
    message["chat"] = chat
    bot.remember_chat(chat)
    if isinstance(message.get("from"), dict):
        message["from"] = _user(message["from"])
    elif chat["type"] == "private":
        message["from"] = {"id": chat["id"], "is_bot": False, "first_name": chat.get("first_name", "User")}
    if isinstance(message.get("message_id"), int):
        bot.note_message_id(chat["id"], message["message_id"])
    else:
        message["message_id"] = bot.next_message_id(chat["id"])
    message.setdefault("date", int(time.time()))
    if edited:
        message.setdefault("edit_date", int(time.time()))
    if isinstance(message.get("text"), str) and "entities" not in message:
        _, entities = format_text(message["text"], "", None)
        if entities:
            message["entities"] = entities
    for kind in _MEDIA_KINDS:
        media = message.get(kind)
        if kind == "photo" and isinstance(media, list):
            for size in media:
                if isinstance(size, dict):
                    bot.files.register(size, "photo")
        elif isinstance(media, dict):
            bot.files.register(media, kind)
    message = _in_wire_order(message)
    if not edited:
        bot.keep_message(message, state.config.message_cap)
    return message


_LEADING_FIELDS = ("message_id", "message_thread_id", "from", "sender_chat", "chat", "date", "edit_date",
                   "is_topic_message", "reply_to_message")


def _in_wire_order(message: dict[str, Any]) -> dict[str, Any]:
    """The fields in the order the real server writes them (identity first, content last)."""
    ordered = {key: message[key] for key in _LEADING_FIELDS if key in message}
    ordered.update((key, value) for key, value in message.items() if key not in ordered)
    return ordered


def _shorthand_update(state: EmulatorState, bot: Bot, body: dict[str, Any]) -> dict[str, Any]:
    kind = body.get("update_type", "message")
    if kind not in _MESSAGE_UPDATES:
        raise InjectionError(f"update_type must be one of {_MESSAGE_UPDATES}")
    sender = body.get("from")
    chat = body.get("chat")
    if chat is None and isinstance(sender, dict) and isinstance(sender.get("id"), int):
        chat = {"id": sender["id"], "type": "private"}
        for field in ("first_name", "last_name", "username"):
            if field in sender:
                chat[field] = sender[field]
    if not isinstance(chat, dict):
        raise InjectionError("give chat (or from, for a private chat)")
    chat = dict(chat)
    if not isinstance(chat.get("id"), int):
        raise InjectionError("chat.id must be an integer")
    chat.setdefault("type", chat_type_for(chat["id"]))
    if chat["type"] == "private" and isinstance(sender, dict):
        for field in ("first_name", "last_name", "username"):
            if field in sender:
                chat.setdefault(field, sender[field])

    message: dict[str, Any] = {"chat": chat}
    if isinstance(body.get("message_id"), int):
        message["message_id"] = body["message_id"]
    if sender is not None:
        if not isinstance(sender, dict) or not isinstance(sender.get("id"), int):
            raise InjectionError("from.id must be an integer")
        message["from"] = _user(sender)
    elif chat["type"] in ("group", "supergroup"):
        raise InjectionError("a group message needs from")
    if "date" in body:
        message["date"] = int(body["date"])
    if isinstance(body.get("message_thread_id"), int):
        message["message_thread_id"] = body["message_thread_id"]
        if chat.get("is_forum"):
            message["is_topic_message"] = True
    reply_to = body.get("reply_to_message_id")
    if isinstance(reply_to, int):
        replied = bot.messages.get((chat["id"], reply_to))
        message["reply_to_message"] = (
            {key: value for key, value in replied.items() if key != "reply_to_message"} if replied
            else {"message_id": reply_to, "chat": chat, "date": int(time.time())}
        )
    if isinstance(body.get("text"), str):
        message["text"] = body["text"]
        if isinstance(body.get("entities"), list):
            message["entities"] = body["entities"]
    for media_kind in _MEDIA_KINDS:
        if media_kind in body:
            message[media_kind] = _inbound_media(state, bot, media_kind, body[media_kind]).as_media()
    if isinstance(body.get("caption"), str):
        message["caption"] = body["caption"]
        if isinstance(body.get("caption_entities"), list):
            message["caption_entities"] = body["caption_entities"]
    if not any(key in message for key in ("text", "caption", *_MEDIA_KINDS)):
        raise InjectionError("a message needs text, a caption or media")
    return {kind: _complete_message(state, bot, message, edited=kind.startswith("edited"))}


def _inbound_media(state: EmulatorState, bot: Bot, kind: str, spec: Any) -> StoredFile:
    if not isinstance(spec, dict):
        raise InjectionError(f"{kind} must be an object with bytes_b64 (or size)")
    data = None
    if "bytes_b64" in spec:
        try:
            data = base64.b64decode(spec["bytes_b64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise InjectionError(f"{kind}.bytes_b64 is not base64") from None
    elif not isinstance(spec.get("size"), int):
        raise InjectionError(f"{kind} needs bytes_b64 or size")
    size = None if data is not None else spec["size"]
    if kind == "photo":
        image = image_info(data) if data is not None else None
        width = spec.get("width") or (image[0] if image else 1280)
        height = spec.get("height") or (image[1] if image else 720)
        stored = bot.files.add_photo(data=data, width=int(width), height=int(height),
                                     ext=image[2] if image else "jpg", size=size)
    else:
        stored = bot.files.add(
            kind,
            data=data,
            size=size,
            file_name=spec.get("file_name"),
            mime_type=spec.get("mime_type"),
            width=spec.get("width"),
            height=spec.get("height"),
            duration=spec.get("duration", 0),
        )
    state.hold_bytes(stored)
    return stored
