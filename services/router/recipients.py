"""Who receives a message, and on which channel.

A conversation bound to a platform chat (a Telegram group, a WhatsApp group,
the private chat a platform user opened with us) gets one delivery to that
chat, never the chat the message came from. Every other member except the
sender gets a delivery on their preferred channel if they have an identity
there, else on their first linked identity, else internally (event streams).
Members who are in the bound platform chat already read it there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from chat4all.channel.v1 import channel_pb2
from chat4all.conversations.v1 import message_pb2 as conversation_pb2
from chat4all.messaging.v1 import message_pb2
from chat4all.users.v1 import message_pb2 as user_pb2

from services.messaging.directory import Directory

INTERNAL = channel_pb2.Channel.CHANNEL_INTERNAL


@dataclass
class Audience:
    conversation: conversation_pb2.Conversation
    recipients: list[message_pb2.Recipient]
    # Who wrote it, when the recipients should be told (see `sender_name`); else empty.
    sender_name: str = ""

    def account_for(self, recipient: message_pb2.Recipient) -> str:
        """The business account that sends to this recipient: the bound chat's own, or the default."""
        binding = self.conversation.platform_binding
        if self.conversation.HasField("platform_binding") and not recipient.user_id and recipient.channel == binding.channel:
            return binding.account_id
        return ""


def choose_channel(preferred: int, user: user_pb2.User) -> tuple[int, str]:
    identities = list(user.identities)
    for wanted in (preferred, user.preferred_channel):
        for identity in identities:
            if wanted and identity.channel == wanted:
                return identity.channel, identity.external_id
    if identities:
        return identities[0].channel, identities[0].external_id
    return INTERNAL, ""


class RecipientResolver:
    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    async def resolve(self, message: message_pb2.Message) -> Audience:
        conversation = await self.directory.conversation(message.conversation_id)
        recipients: list[message_pb2.Recipient] = []
        bound = conversation.HasField("platform_binding")
        binding = conversation.platform_binding
        inbound = message.origin.inbound if message.origin.HasField("inbound") else None
        if bound:
            came_from_chat = inbound is not None and inbound.channel == binding.channel and inbound.external_chat_id == binding.external_group_id
            if not came_from_chat:
                recipients.append(message_pb2.Recipient(channel=binding.channel, external_id=binding.external_group_id))
        others = [m for m in conversation.members if m.user_id != message.sender_user_id]
        users = await asyncio.gather(*(self.directory.user(m.user_id) for m in others))
        for member, user in zip(others, users):
            channel, external_id = choose_channel(member.preferred_channel, user)
            if bound and channel == binding.channel:
                continue
            recipients.append(message_pb2.Recipient(user_id=member.user_id, channel=channel, external_id=external_id))
        return Audience(conversation, recipients, await self.sender_name(message, conversation))

    async def sender_name(self, message: message_pb2.Message, conversation: conversation_pb2.Conversation) -> str:
        """The author's name for messages relayed from a platform (a Telegram user's words
        reaching a WhatsApp member) and in groups of three or more, where one business account
        speaks for many people; none in a one-to-one conversation."""
        relayed = message.origin.HasField("inbound")
        if not message.sender_user_id or not (relayed or len(conversation.members) >= 3):
            return ""
        return (await self.directory.user(message.sender_user_id)).display_name
