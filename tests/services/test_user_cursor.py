"""The user stream's cursor on its own: a vector bound to its user, kept small by
checkpoints, and refused whole when anything in it is off."""

from __future__ import annotations

import base64
import uuid

import pytest

from services.messaging import user_cursor
from services.messaging.user_cursor import MAX_CURSOR_CHARS, MAX_CURSOR_ENTRIES, UserCursor
from services.messaging.user_positions import StreamPositions
from services.runtime.errors import InvalidArgument

ALICE, BOB = str(uuid.uuid4()), str(uuid.uuid4())


def conversations(n: int) -> list[str]:
    return sorted(str(uuid.uuid4()) for _ in range(n))


def raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def token(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_cursor_round_trips_with_and_without_a_checkpoint():
    positions = dict(zip(conversations(3), [0, 127, 2**40]))
    for checkpoint in (None, bytes(range(16))):
        cursor = UserCursor(ALICE, checkpoint, positions)
        assert user_cursor.decode(user_cursor.encode(cursor), ALICE) == cursor


def test_another_users_cursor_is_refused():
    encoded = user_cursor.encode(UserCursor(ALICE, None, {str(uuid.uuid4()): 1}))
    with pytest.raises(InvalidArgument, match="belongs to another user's stream"):
        user_cursor.decode(encoded, BOB)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b"\x02" + b[1:],  # an unknown version
        lambda b: b[:10],  # shorter than the header
        lambda b: b[:17] + b"\x02" + b[18:],  # unknown flags
        lambda b: b[:-1],  # an entry cut in its varint
        lambda b: b + b"\x00" * 5,  # a partial entry after the last
        lambda b: b[:-1] + b"\x80",  # a varint that never ends
        lambda b: b + b[18:],  # the same conversation twice
    ],
)
def test_a_mangled_cursor_is_malformed(mangle):
    encoded = user_cursor.encode(UserCursor(ALICE, None, {conversations(1)[0]: 300}))
    with pytest.raises(InvalidArgument, match="after_cursor is malformed"):
        user_cursor.decode(token(mangle(raw(encoded))), ALICE)


def test_a_cursor_with_more_entries_than_allowed_is_malformed():
    too_many = UserCursor(ALICE, None, dict.fromkeys(conversations(MAX_CURSOR_ENTRIES + 1), 1))
    with pytest.raises(InvalidArgument, match="malformed"):
        user_cursor.decode(user_cursor.encode(too_many), ALICE)


def test_positions_checkpoint_once_too_many_differ_and_cursors_stay_small():
    followed = conversations(MAX_CURSOR_ENTRIES + 10)
    positions = StreamPositions(ALICE)
    for conversation_id in followed[:MAX_CURSOR_ENTRIES]:
        positions.set(conversation_id, 2**62)
    assert not positions.needs_checkpoint
    assert len(user_cursor.decode(positions.cursor(), ALICE).positions) == MAX_CURSOR_ENTRIES

    for conversation_id in followed[MAX_CURSOR_ENTRIES:]:
        positions.set(conversation_id, 5)
    assert positions.needs_checkpoint
    checkpoint_id, payload = positions.checkpoint()
    assert user_cursor.decode_positions(payload) == positions.current
    assert positions.checkpoint()[0] == checkpoint_id  # content-addressed
    positions.checkpointed(checkpoint_id)

    positions.set(followed[0], 2**62 + 1)
    positions.set(followed[-1], 5)  # back to what the checkpoint says: not an entry
    cursor = user_cursor.decode(positions.cursor(), ALICE)
    assert cursor == UserCursor(ALICE, checkpoint_id, {followed[0]: 2**62 + 1})
    assert cursor.vector(user_cursor.decode_positions(payload)) == positions.current
    assert len(positions.cursor()) <= MAX_CURSOR_CHARS

    positions.drop(followed[0])
    assert user_cursor.decode(positions.cursor(), ALICE).positions == {}
