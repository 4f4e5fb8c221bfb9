-- Users that UserService merged into another, as ApplyUserMerge applied the merge here.
-- The row is written in the transaction that moves all of the user's memberships to the
-- survivor, under an exclusive advisory lock on the user (services/conversations/member_locks.py);
-- every transaction that makes someone a member takes that lock shared and checks this table
-- first, so no membership of a merged user can appear once its merge was applied.
CREATE TABLE merged_users (
    user_id                 uuid        PRIMARY KEY,
    merged_into_user_id     uuid        NOT NULL,
    -- MergeUsers' request_id, also on every membership change the merge made.
    request_id              uuid        NOT NULL,
    -- What ApplyUserMerge answers, on the first call and on every repeat.
    changed_conversation_ids uuid[]     NOT NULL,
    apply_time              timestamptz NOT NULL DEFAULT now(),
    CHECK (merged_into_user_id <> user_id)
);
