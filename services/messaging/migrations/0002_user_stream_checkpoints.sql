-- Checkpoints of user event streams (StreamUserEvents). A user stream's cursor is a
-- vector {conversation_id: seq} over the user's conversations; to keep the cursor
-- that every event carries small, it holds at most a few positions on top of a
-- checkpoint stored here (see services/messaging/user_cursor.py). Rows are
-- immutable and content-addressed, and only ever read under their own user.
CREATE TABLE user_stream_checkpoints (
    user_id        uuid        NOT NULL,
    checkpoint_id  bytea       NOT NULL,  -- sha-256 prefix of user_id and positions
    positions      bytea       NOT NULL,  -- (conversation uuid, varint seq) entries, sorted
    -- Refreshed when the same vector is saved again; checkpoints older than the
    -- retention are pruned and their cursors answer OUT_OF_RANGE.
    save_time      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, checkpoint_id)
);
CREATE INDEX user_stream_checkpoints_by_save_time ON user_stream_checkpoints (save_time);
