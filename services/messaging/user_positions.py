"""Where one user stream stands, and the cursor that says so after each event.

The stream's true position is `current`: for every conversation it follows, the
seq of the last event it delivered (or the seq it starts after). A cursor must
carry all of it, since a resume needs to know where every conversation stood,
not only the ones that had events. To keep cursors small, `current` is written
as a checkpoint (a stored full vector, `base`) plus the few entries that differ
from it (`changed`); once more than MAX_CURSOR_ENTRIES differ, the stream stores
`current` as the new checkpoint before it hands out the next cursor.
"""

from __future__ import annotations

import hashlib
import uuid

from services.messaging import user_cursor
from services.messaging.user_cursor import MAX_CURSOR_ENTRIES, UserCursor


class StreamPositions:
    def __init__(self, user_id: str, checkpoint_id: bytes | None = None, base: dict[str, int] | None = None) -> None:
        self.user_id = user_id
        self.checkpoint_id = checkpoint_id
        self.base: dict[str, int] = dict(base or {})
        self.current: dict[str, int] = {}
        self.changed: dict[str, int] = {}

    def follows(self, conversation_id: str) -> bool:
        return conversation_id in self.current

    def set(self, conversation_id: str, seq: int) -> None:
        self.current[conversation_id] = seq
        if self.base.get(conversation_id) == seq:
            self.changed.pop(conversation_id, None)
        else:
            self.changed[conversation_id] = seq

    def drop(self, conversation_id: str) -> None:
        """Stop following. A stale entry left in the checkpoint is harmless: a resume only
        follows the conversations the user is a member of then, and starts a rejoined one
        after the last event that occurred before the new join (see user_stream_store)."""
        self.current.pop(conversation_id, None)
        self.changed.pop(conversation_id, None)

    @property
    def needs_checkpoint(self) -> bool:
        return len(self.changed) > MAX_CURSOR_ENTRIES

    def checkpoint(self) -> tuple[bytes, bytes]:
        """(checkpoint_id, payload) of `current`, to store before calling `checkpointed`.
        Content-addressed: the same vector of the same user always gets the same id."""
        payload = user_cursor.encode_positions(self.current)
        checkpoint_id = hashlib.sha256(uuid.UUID(self.user_id).bytes + payload).digest()[: user_cursor.CHECKPOINT_ID_BYTES]
        return checkpoint_id, payload

    def checkpointed(self, checkpoint_id: bytes) -> None:
        self.checkpoint_id = checkpoint_id
        self.base = dict(self.current)
        self.changed = {}

    def cursor(self) -> str:
        assert not self.needs_checkpoint, "store a checkpoint first"
        return user_cursor.encode(UserCursor(self.user_id, self.checkpoint_id, dict(self.changed)))
