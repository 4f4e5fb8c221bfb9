"""What the emulator remembers: bots, their chats, pending updates, files,
and the history the control API shows (requests received, messages sent).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import random
import re
import time
from collections import OrderedDict, deque
from typing import Any

from .config import EmulatorConfig
from .faults import Faults
from .limits import FloodControl
from .media import FileStore, StoredFile

TOKEN_PATTERN = re.compile(r"[1-9][0-9]{0,15}:[A-Za-z0-9_-]{35}")

# Update types a bot receives when it has not chosen (Bot API default).
UPDATE_TYPES = (
    "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
    "business_message", "edited_business_message", "deleted_business_messages", "message_reaction",
    "message_reaction_count", "inline_query", "chosen_inline_result", "callback_query", "shipping_query",
    "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer", "my_chat_member", "chat_member",
    "chat_join_request", "chat_boost", "removed_chat_boost",
)
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Emulator-only chat fields (set through the control API): sends to the chat fail with 403.
CHAT_FLAGS = ("blocked", "kicked")


def chat_type_for(chat_id: int) -> str:
    """The chat type an id implies: users are positive, groups negative, supergroups -100…"""
    if chat_id > 0:
        return "private"
    if chat_id <= -1_000_000_000_000:
        return "supergroup"
    return "group"


class LongPoll:
    """A getUpdates waiting for updates; woken with the reason it ends."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def wake(self, reason: str) -> None:
        if not self.future.done():
            self.future.set_result(reason)


class Webhook:
    __slots__ = ("url", "secret_token", "max_connections", "ip_address", "has_custom_certificate")

    def __init__(self, url: str, secret_token: str, max_connections: int, ip_address: str):
        self.url = url
        self.secret_token = secret_token
        self.max_connections = max_connections
        self.ip_address = ip_address
        self.has_custom_certificate = False

    def same_as(self, other: Webhook) -> bool:
        return (self.url, self.secret_token, self.max_connections, self.ip_address) == (
            other.url, other.secret_token, other.max_connections, other.ip_address,
        )


class Bot:
    """One bot token: identity, update queue, webhook, chats and files."""

    def __init__(self, token: str, rng: random.Random, deliveries_cap: int = 10_000):
        self.token = token
        self.id = int(token.split(":", 1)[0])
        self.first_name = "Chat4All Emulator"
        self.username = f"c4a_emulator_{self.id}_bot"
        self._user: dict[str, Any] | None = None
        # Real update ids start from an arbitrary number and then go up by one.
        self.next_update_id = rng.randint(100_000_000, 900_000_000)
        # Pending updates in delivery order; the same dict may appear twice
        # (injected duplicates). Entries leave when confirmed or delivered.
        self.queue: deque[dict[str, Any]] = deque()
        self.queue_ordered = True
        self._queue_changed = asyncio.Event()
        self.long_poll: LongPoll | None = None
        self.allowed_updates: frozenset[str] | None = None
        self.webhook: Webhook | None = None
        self.webhook_task: asyncio.Task[None] | None = None
        self.last_webhook_error_date = 0
        self.last_webhook_error_message = ""
        self.webhook_deliveries: deque[dict[str, Any]] = deque(maxlen=deliveries_cap)
        self.previous_get_updates: tuple[int, float] = (-1, 0.0)
        self.next_conflict_at = 0.0
        # Chat state: the last message id per chat, chats seen, messages kept.
        self.last_message_id: dict[int, int] = {}
        self.deleted: set[tuple[int, int]] = set()
        self.chats: dict[int, dict[str, Any]] = {}
        # The Chat objects messages carry, one shared dict per chat (do not mutate).
        self._public_chats: dict[int, dict[str, Any]] = {}
        self.chat_ids_by_username: dict[str, int] = {}
        self.messages: OrderedDict[tuple[int, int], dict[str, Any]] = OrderedDict()
        self.files = FileStore(rng)

    def user(self) -> dict[str, Any]:
        """The bot's User object, shared by every message it sends (do not mutate)."""
        if self._user is None:
            self._user = {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}
        return self._user

    def set_identity(self, first_name: str | None = None, username: str | None = None) -> None:
        self.first_name = first_name or self.first_name
        self.username = username or self.username
        self._user = None

    # --- updates -----------------------------------------------------------

    def allows(self, update_type: str) -> bool:
        if self.allowed_updates is None:
            return update_type not in NOT_BY_DEFAULT
        return update_type in self.allowed_updates

    def set_allowed_updates(self, value: Any) -> None:
        if not isinstance(value, list):
            return
        chosen = frozenset(item for item in value if isinstance(item, str) and item in UPDATE_TYPES)
        # An empty list means "the default set", as on the real server.
        self.allowed_updates = chosen or None

    def take_update_id(self) -> int:
        update_id = self.next_update_id
        self.next_update_id += 1
        return update_id

    def enqueue(self, updates: list[dict[str, Any]], ordered: bool = True) -> None:
        if not updates:
            return
        self.queue.extend(updates)
        if not ordered:
            self.queue_ordered = False
        if self.long_poll is not None:
            self.long_poll.wake("update")
        changed, self._queue_changed = self._queue_changed, asyncio.Event()
        changed.set()

    async def queue_changed(self) -> None:
        await self._queue_changed.wait()

    def confirm(self, offset: int) -> None:
        """getUpdates' offset: forget the updates before it (negative: keep the last -offset)."""
        if not self.queue:
            return
        tail = self.next_update_id
        head = self.queue[0]["update_id"] if self.queue_ordered else min(u["update_id"] for u in self.queue)
        if offset <= 0:
            if offset < 0:
                offset += tail
            offset = max(offset, head)
        if offset > tail:
            return  # an offset in the future is served from the head, nothing is forgotten
        if self.queue_ordered:
            while self.queue and self.queue[0]["update_id"] < offset:
                self.queue.popleft()
        else:
            self.queue = deque(u for u in self.queue if u["update_id"] >= offset)
            if not self.queue:
                self.queue_ordered = True

    def pending(self, limit: int) -> list[dict[str, Any]]:
        return list(itertools.islice(self.queue, limit))

    def drop_pending(self) -> None:
        self.queue.clear()
        self.queue_ordered = True

    # --- chats and messages ------------------------------------------------

    def chat(self, chat_id: int) -> dict[str, Any]:
        known = self.chats.get(chat_id)
        if known is not None:
            return known
        return {"id": chat_id, "type": chat_type_for(chat_id)}

    def public_chat(self, chat_id: int) -> dict[str, Any]:
        """The Chat object as messages show it (without the emulator's own flags)."""
        chat = self._public_chats.get(chat_id)
        if chat is None:
            chat = {key: value for key, value in self.chat(chat_id).items() if key not in CHAT_FLAGS}
            self._public_chats[chat_id] = chat
        return chat

    def remember_chat(self, chat: dict[str, Any]) -> None:
        chat_id = chat.get("id")
        if not isinstance(chat_id, int):
            return
        merged = {**self.chats.get(chat_id, {}), **chat}
        for flag in CHAT_FLAGS:
            if not merged.get(flag):
                merged.pop(flag, None)
        self.chats[chat_id] = merged
        self._public_chats.pop(chat_id, None)
        username = merged.get("username")
        if isinstance(username, str) and merged.get("type") != "private":
            self.chat_ids_by_username[username.lower()] = chat_id

    def chat_id_for_username(self, username: str) -> int:
        """A channel or supergroup named @username; unknown names get a stable id."""
        key = username.lower()
        chat_id = self.chat_ids_by_username.get(key)
        if chat_id is None:
            digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")
            chat_id = -(1_000_000_000_000 + digest)
            self.remember_chat({"id": chat_id, "type": "channel", "title": username, "username": username})
        return chat_id

    def next_message_id(self, chat_id: int) -> int:
        message_id = self.last_message_id.get(chat_id, 0) + 1
        self.last_message_id[chat_id] = message_id
        return message_id

    def note_message_id(self, chat_id: int, message_id: int) -> None:
        if message_id > self.last_message_id.get(chat_id, 0):
            self.last_message_id[chat_id] = message_id

    def message_exists(self, chat_id: int, message_id: int) -> bool:
        return 0 < message_id <= self.last_message_id.get(chat_id, 0) and (chat_id, message_id) not in self.deleted

    def keep_message(self, message: dict[str, Any], cap: int) -> None:
        key = (message["chat"]["id"], message["message_id"])
        self.messages[key] = message
        if len(self.messages) > cap:
            self.messages.popitem(last=False)


class RecordedRequest:
    """One request to a Bot API endpoint, as the control API lists it."""

    __slots__ = ("seq", "method", "token", "http_method", "params", "received_at", "status", "description", "via",
                 "dropped")

    def __init__(self, seq: int, method: str, token: str, http_method: str, params: dict[str, Any],
                 received_at: float, via: str):
        self.seq = seq
        self.method = method
        self.token = token
        self.http_method = http_method
        self.params = params
        self.received_at = received_at
        self.via = via
        self.status: int | None = None
        self.description: str | None = None
        self.dropped = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "method": self.method,
            "token": self.token,
            "http_method": self.http_method,
            "params": self.params,
            "received_at": self.received_at,
            "status": self.status,
            "description": self.description,
            "dropped": self.dropped,
            "via": self.via,
        }


class SentMessage:
    """A message the bot sent that the emulator accepted."""

    __slots__ = ("seq", "token", "method", "message", "sent_at", "media")

    def __init__(self, seq: int, token: str, method: str, message: dict[str, Any], sent_at: float,
                 media: dict[str, Any] | None):
        self.seq = seq
        self.token = token
        self.method = method
        self.message = message
        self.sent_at = sent_at
        self.media = media

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "token": self.token,
            "bot_id": int(self.token.split(":", 1)[0]),
            "method": self.method,
            "chat_id": self.message["chat"]["id"],
            "message_id": self.message["message_id"],
            "sent_at": self.sent_at,
            "message": self.message,
            "media": self.media,
        }


class EmulatorState:
    def __init__(self, config: EmulatorConfig):
        self.config = config
        self.rng = random.Random(config.seed)
        self.bots: dict[str, Bot] = {}
        self.requests: deque[RecordedRequest] = deque(maxlen=config.record_cap)
        self.sent: deque[SentMessage] = deque(maxlen=config.message_cap)
        self._request_seq = itertools.count(1)
        self._sent_seq = itertools.count(1)
        self.faults = Faults(config.seed)
        # Run-time copies: the control API changes these, reset restores them.
        self.flood = FloodControl(dataclasses.replace(config.limits))
        self.webhook_policy = dataclasses.replace(config.webhook)
        # Files holding bytes, oldest first, for the memory cap.
        self._file_bytes: OrderedDict[int, StoredFile] = OrderedDict()
        self._file_bytes_total = 0

    def token_is_valid(self, token: str) -> bool:
        if self.config.tokens:
            return token in self.config.tokens
        return TOKEN_PATTERN.fullmatch(token) is not None

    def bot(self, token: str) -> Bot | None:
        bot = self.bots.get(token)
        if bot is None:
            if not self.token_is_valid(token):
                return None
            bot = self.bots[token] = Bot(token, random.Random(self.rng.random()), self.config.webhook_deliveries_cap)
        return bot

    def record_request(self, method: str, token: str, http_method: str, params: dict[str, Any],
                       received_at: float, via: str = "http") -> RecordedRequest:
        record = RecordedRequest(next(self._request_seq), method, token, http_method, params, received_at, via)
        self.requests.append(record)
        return record

    def record_sent(self, bot: Bot, method: str, message: dict[str, Any], media: dict[str, Any] | None = None) -> None:
        self.sent.append(SentMessage(next(self._sent_seq), bot.token, method, message, time.time(), media))
        bot.keep_message(message, self.config.message_cap)

    def hold_bytes(self, stored: StoredFile) -> None:
        """Count a file's bytes against the store cap, evicting the oldest bytes first."""
        if stored.data is None:
            return
        self._file_bytes[id(stored)] = stored
        self._file_bytes_total += len(stored.data)
        while self._file_bytes_total > self.config.file_store_bytes and len(self._file_bytes) > 1:
            _, oldest = self._file_bytes.popitem(last=False)
            if oldest.data is not None:
                self._file_bytes_total -= len(oldest.data)
            for size in oldest.photo_sizes or [oldest]:
                size.data = None

    def reset(self) -> None:
        for bot in self.bots.values():
            if bot.long_poll is not None:
                bot.long_poll.wake("reset")
            if bot.webhook_task is not None:
                bot.webhook_task.cancel()
        self.bots.clear()
        self.requests.clear()
        self.sent.clear()
        self.faults.reset()
        self.flood.configure(dataclasses.replace(self.config.limits))
        self.webhook_policy = dataclasses.replace(self.config.webhook)
        self._file_bytes.clear()
        self._file_bytes_total = 0
        self.rng = random.Random(self.config.seed)
