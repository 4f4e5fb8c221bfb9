"""The cursor of a user event stream (StreamUserEvents): where the stream stands in
each of the user's conversations.

Why a vector and not one global number: events are numbered per conversation by
the conversation's single writer (the router lane that owns its partition). A
global sequence would be assigned at insert but become visible at commit, and
concurrent transactions commit out of order, so a reader that saw global
position 105 could later see 103 appear: a gap after a reconnect. A vector
{conversation_id: last seq delivered} only ever refers to per-conversation
numbers that are gap-free by construction, so resuming from it loses and
repeats nothing, whatever the interleaving across conversations was.

Why it stays small: a user may belong to thousands of conversations, and every
event carries its own cursor. The cursor therefore holds at most
MAX_CURSOR_ENTRIES positions on top of an optional checkpoint: a full vector the
server stored (user_stream_checkpoints, content-addressed and bound to the user).
When more positions than that differ from the checkpoint, the stream stores a
new checkpoint and the cursor starts over from it (see user_positions.py).

Binding: the cursor names its user, so another user's cursor is refused with
INVALID_ARGUMENT. It is not signed: a position grants no access (membership is
checked again on every resume), so a forged cursor can only skip or replay
events of conversations the user may read anyway; checkpoints are looked up
under the user's own id.

Layout (then base64url without padding):
    version (1 byte) | user_id (16) | flags (1) | [checkpoint_id (16) if flags & 1]
    | entries: conversation_id (16) + seq (unsigned LEB128 varint), repeated
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field

from services.runtime.errors import InvalidArgument

VERSION = 1
# Positions a cursor carries beyond its checkpoint. 16 keeps a cursor under ~450
# characters; a user active in at most this many conversations between two
# checkpoints never causes a checkpoint write.
MAX_CURSOR_ENTRIES = 16
CHECKPOINT_ID_BYTES = 16
_HAS_CHECKPOINT = 1
_HEADER = 1 + 16 + 1
# Longest well-formed cursor: header, checkpoint, entries with 10-byte varints.
MAX_CURSOR_CHARS = ((_HEADER + CHECKPOINT_ID_BYTES + MAX_CURSOR_ENTRIES * 26) * 4 + 2) // 3
_MAX_SEQ = 2**63 - 1  # PostgreSQL bigint


@dataclass(frozen=True)
class UserCursor:
    user_id: str
    # The stored vector these positions apply on top of; None when they are the whole vector.
    checkpoint_id: bytes | None = None
    positions: dict[str, int] = field(default_factory=dict)

    def vector(self, checkpoint: dict[str, int]) -> dict[str, int]:
        """The full vector, given the checkpoint's positions."""
        return {**checkpoint, **self.positions}


def encode(cursor: UserCursor) -> str:
    raw = bytearray([VERSION])
    raw += uuid.UUID(cursor.user_id).bytes
    raw.append(_HAS_CHECKPOINT if cursor.checkpoint_id is not None else 0)
    if cursor.checkpoint_id is not None:
        raw += cursor.checkpoint_id
    raw += encode_positions(cursor.positions)
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def decode(token: str, user_id: str, field_name: str = "after_cursor") -> UserCursor:
    """The cursor, if well-formed and issued to this user's stream; else INVALID_ARGUMENT."""
    malformed = InvalidArgument(f"{field_name} is malformed")
    if len(token) > MAX_CURSOR_CHARS:
        raise malformed
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise malformed from None
    if len(raw) < _HEADER or raw[0] != VERSION or raw[17] not in (0, _HAS_CHECKPOINT):
        raise malformed
    if str(uuid.UUID(bytes=raw[1:17])) != user_id:
        raise InvalidArgument(f"{field_name} belongs to another user's stream")
    offset, checkpoint_id = _HEADER, None
    if raw[17] & _HAS_CHECKPOINT:
        checkpoint_id = raw[offset : offset + CHECKPOINT_ID_BYTES]
        offset += CHECKPOINT_ID_BYTES
        if len(checkpoint_id) != CHECKPOINT_ID_BYTES:
            raise malformed
    try:
        positions = decode_positions(raw[offset:])
    except ValueError:
        raise malformed from None
    if len(positions) > MAX_CURSOR_ENTRIES:
        raise malformed
    return UserCursor(user_id, checkpoint_id, positions)


# The entries, shared with checkpoints (which hold any number of them) ---------------------


def encode_positions(positions: dict[str, int]) -> bytes:
    raw = bytearray()
    # Sorted, so the same vector always encodes (and hashes, for checkpoint ids) the same.
    for conversation_id in sorted(positions):
        raw += uuid.UUID(conversation_id).bytes
        _put_varint(raw, positions[conversation_id])
    return bytes(raw)


def decode_positions(raw: bytes) -> dict[str, int]:
    """ValueError unless `raw` is a whole number of distinct entries."""
    positions: dict[str, int] = {}
    offset = 0
    while offset < len(raw):
        if len(raw) - offset < 17:
            raise ValueError("truncated entry")
        conversation_id = str(uuid.UUID(bytes=raw[offset : offset + 16]))
        seq, offset = _get_varint(raw, offset + 16)
        if conversation_id in positions:
            raise ValueError("a conversation appears twice")
        positions[conversation_id] = seq
    return positions


def _put_varint(out: bytearray, value: int) -> None:
    if not 0 <= value <= _MAX_SEQ:
        raise ValueError(f"position {value} out of range")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _get_varint(raw: bytes, offset: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if offset >= len(raw) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = raw[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    if value > _MAX_SEQ:
        raise ValueError("position out of range")
    return value, offset
