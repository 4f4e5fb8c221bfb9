"""UserService settings: the runtime's, plus where ConversationService answers."""

from __future__ import annotations

import dataclasses

from services.runtime.config import RuntimeSettings


@dataclasses.dataclass(frozen=True, kw_only=True)
class UserSettings(RuntimeSettings):
    # ConversationService, which moves a merged user's memberships (C4A_CONVERSATIONS_TARGET).
    # The default is the conversations app of the local platform (scripts/platform/local.toml).
    conversations_target: str = "127.0.0.1:18202"
    # How often merges whose memberships have not moved yet (ConversationService was unreachable
    # and the client did not retry) are finished in the background; also how old such a merge
    # must be, so the follow-up does not race the MergeUsers call still handling it.
    merge_follow_up_seconds: float = 30.0
