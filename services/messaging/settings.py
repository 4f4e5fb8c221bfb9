from __future__ import annotations

import dataclasses

from services.runtime.config import RuntimeSettings


@dataclasses.dataclass(frozen=True, kw_only=True)
class MessagingSettings(RuntimeSettings):
    # ConversationService, asked whether a conversation exists and who its members are.
    conversations_target: str = "127.0.0.1:18202"
    # How long SendMessage waits for the broker's acknowledgement before answering UNAVAILABLE.
    kafka_ack_timeout_seconds: float = 10.0
    # A stream with nothing new re-reads its log this often, in case a notification was lost.
    stream_poll_seconds: float = 15.0
