-- One row per merge, written in the transaction that moves the source's identities to the
-- target and sets the source's merged_into_user_id. A merged user is never a source or a target
-- again, so a user is the source of at most one merge and merges never form a cycle.
CREATE TABLE user_merges (
    source_user_id          uuid        PRIMARY KEY REFERENCES users,
    target_user_id          uuid        NOT NULL REFERENCES users,
    -- MergeUsers' request_id: a retry finds its merge here.
    request_id              uuid        NOT NULL UNIQUE,
    -- The identities that moved: [{"channel": <Channel number>, "external_id": "..."}].
    moved_identities        jsonb       NOT NULL,
    merge_time              timestamptz NOT NULL DEFAULT now(),
    -- When ConversationService confirmed the source's memberships moved (ApplyUserMerge).
    -- NULL: a retry of MergeUsers, or the follow-up task, still has to finish that step.
    memberships_moved_time  timestamptz,
    CHECK (target_user_id <> source_user_id)
);

-- A survivor's merges.
CREATE INDEX user_merges_by_target ON user_merges (target_user_id);
-- The follow-up task's work list.
CREATE INDEX user_merges_unfinished ON user_merges (merge_time) WHERE memberships_moved_time IS NULL;
