"""ConversationService settings: the runtime's, plus where UserService answers."""

from __future__ import annotations

import dataclasses

from services.runtime.config import RuntimeSettings


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationSettings(RuntimeSettings):
    # UserService, asked whether members exist (C4A_USERS_TARGET). The default is the
    # users app of the local platform (scripts/platform/local.toml).
    users_target: str = "127.0.0.1:18203"
