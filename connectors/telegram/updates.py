"""Telegram updates become InboundMessageReceived events on chat4all.inbound.v1.

Both ways updates come in (webhook, polling) hand each update to
`TelegramUpdates`, which publishes it through the SDK's InboundPublisher at most
once per update_id (event key `update:<update_id>`): a redelivery is dropped, a
failure to publish raises so the update comes again (the webhook answers 500,
the poller does not advance its offset). A set of handled ids, rather than "at
or below the highest handled id", also survives an update delivered late or out
of order, and Telegram choosing new ids after a week without updates.

Order: Telegram keeps updates in update_id order and, with one webhook
connection (we ask for max_connections=1), delivers the next only after the
previous one was acknowledged; getUpdates batches are handled in update_id
order. Updates of a chat are keyed by the chat, so they stay in order in Kafka.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as conversations_pb2
from chat4all.events.v1 import event_pb2

from connectors.sdk import metrics
from connectors.sdk.inbound import IGNORED, Build, InboundPublisher, event_id_for, inbound_key
from services.messaging import topics

log = logging.getLogger("chat4all.telegram.updates")

# The update types the connector handles; Telegram sends only these (other types that
# arrive anyway, e.g. through a webhook someone else registered, are logged and dropped).
ALLOWED_UPDATES = ["message"]
KIND = "update"  # the inbound metric's kind label


def display_name(user: dict[str, Any]) -> str:
    name = " ".join(part for part in (user.get("first_name"), user.get("last_name")) if part)
    if name:
        return name
    return f"@{user['username']}" if user.get("username") else ""


def inbound_event(update: dict[str, Any], bot_id: str, receive_time: float) -> tuple[event_pb2.Event | None, str]:
    """The event for an update, or None and why it is not one (logged by the publisher)."""
    message = update.get("message")
    if not isinstance(message, dict):
        kind = next((key for key in update if key != "update_id"), "empty")
        return None, f"{kind} updates are not handled"
    sender = message.get("from")
    chat = message.get("chat")
    if not isinstance(sender, dict) or not isinstance(chat, dict):
        return None, "a message without a sender or chat"
    if not all(isinstance(value, int) for value in (sender.get("id"), chat.get("id"), message.get("message_id"))):
        return None, "a message without its ids"
    if sender.get("is_bot"):
        # Bots (our own echoes included, and anonymous group admins) must not loop back in.
        return None, "a message from a bot"
    chat_type = chat.get("type")
    if chat_type not in ("private", "group", "supergroup"):
        return None, f"a message in a {chat_type} chat"
    text = message.get("text")
    if not isinstance(text, str):
        return None, "a message without text (media are not handled yet)"

    # The same id as before the SDK ("telegram-update", bot, update_id): a re-publish keeps it.
    event = event_pb2.Event(event_id=event_id_for("telegram-update", bot_id, update["update_id"]))
    received = event.inbound_message_received
    received.channel = channel_pb2.CHANNEL_TELEGRAM
    received.account_id = bot_id
    received.external_sender_id = str(sender["id"])
    received.external_sender_display_name = display_name(sender)
    received.external_message_id = str(message["message_id"])
    received.external_chat_id = str(chat["id"])
    received.chat_type = (
        conversations_pb2.CONVERSATION_TYPE_DIRECT if chat_type == "private" else conversations_pb2.CONVERSATION_TYPE_GROUP
    )
    received.content.text = text
    received.platform_time.FromSeconds(int(message.get("date") or 0))
    received.receive_time.FromNanoseconds(int(receive_time * 1e9))
    event.occur_time.CopyFrom(received.platform_time)
    return event, ""


def update_id_of(update: dict[str, Any]) -> int | None:
    value = update.get("update_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class TelegramUpdates:
    def __init__(self, bot_id: str, publisher: InboundPublisher) -> None:
        self.bot_id = bot_id
        self.publisher = publisher

    async def publish_once(self, update: dict[str, Any]) -> str:
        """published | duplicate | ignored | busy; raises when publishing failed (retry later)."""
        update_id = update_id_of(update)
        if update_id is None:
            return self._without_id()
        return await self.publisher.publish_once(KIND, f"update:{update_id}", self._build(update))

    async def publish_waiting(self, update: dict[str, Any]) -> str:
        """publish_once, waiting a little while another request handles the same update."""
        update_id = update_id_of(update)
        if update_id is None:
            return self._without_id()
        return await self.publisher.publish_waiting(KIND, f"update:{update_id}", self._build(update))

    def _build(self, update: dict[str, Any]) -> Build:
        async def build():
            event, reason = inbound_event(update, self.bot_id, time.time())
            if event is None:
                return None, reason, None
            chat_id = event.inbound_message_received.external_chat_id
            return topics.INBOUND, inbound_key(channel_pb2.CHANNEL_TELEGRAM, self.bot_id, chat_id), event

        return build

    def _without_id(self) -> str:
        log.warning("an update without an update_id was dropped")
        metrics.INBOUND.labels("telegram", KIND, IGNORED).inc()
        return IGNORED
