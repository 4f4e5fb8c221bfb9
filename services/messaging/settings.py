from __future__ import annotations

import dataclasses

from services.runtime.config import RuntimeSettings


@dataclasses.dataclass(frozen=True, kw_only=True)
class MessagingSettings(RuntimeSettings):
    # ConversationService, asked whether a conversation exists and who its members are.
    conversations_target: str = "127.0.0.1:18202"
    # UserService, asked whether the user of a user stream exists.
    users_target: str = "127.0.0.1:18203"
    # FileService, asked whether attached files exist, are CLEAN and belong to the sender.
    files_target: str = "127.0.0.1:18204"
    # How long SendMessage waits for the broker's acknowledgement before answering UNAVAILABLE.
    kafka_ack_timeout_seconds: float = 10.0
    # A stream with nothing new re-reads its log this often, in case a notification was lost.
    stream_poll_seconds: float = 15.0
    # A user stream lists its user's conversations again and re-reads all their logs this often,
    # in case a membership announcement or a notification was lost (both normally reach it at once).
    user_stream_refresh_seconds: float = 60.0
    # How long a user stream's checkpoint (the stored part of its cursors) is kept after it was
    # last saved; a cursor that needs a pruned one answers OUT_OF_RANGE.
    user_stream_checkpoint_retention_days: float = 30.0
