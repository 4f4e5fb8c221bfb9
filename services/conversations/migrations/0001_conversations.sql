-- Conversations, their current members and their membership history. Only
-- ConversationService reads and writes these tables; other services call its
-- gRPC API. Enums are stored as their protobuf numbers, which never change.
-- Member ids are UserService user ids (checked over its API, no foreign key).

CREATE TABLE conversations (
    conversation_id            uuid        PRIMARY KEY,
    type                       smallint    NOT NULL CHECK (type IN (1, 2)),  -- ConversationType
    title                      text        NOT NULL DEFAULT '',
    -- PlatformBinding: all three or none.
    binding_channel            smallint,
    binding_account_id         text,
    binding_external_group_id  text,
    -- DIRECT only: its two members, lower id first (one direct conversation per pair).
    direct_user_low            uuid,
    direct_user_high           uuid,
    -- seq of the latest membership change; changes are numbered under this row's lock.
    membership_seq             bigint      NOT NULL DEFAULT 0,
    create_time                timestamptz NOT NULL,
    update_time                timestamptz NOT NULL,
    CHECK ((binding_channel IS NULL) = (binding_account_id IS NULL)
           AND (binding_channel IS NULL) = (binding_external_group_id IS NULL)),
    CHECK ((direct_user_low IS NULL) = (type <> 1) AND (direct_user_high IS NULL) = (type <> 1)
           AND direct_user_low < direct_user_high)
);

-- ListConversations: newest first, keyset cursor (create_time, conversation_id).
CREATE INDEX conversations_newest_first ON conversations (create_time DESC, conversation_id DESC);
-- A platform group mirrors one conversation; also the inbound lookup by binding.
CREATE UNIQUE INDEX conversations_by_platform_binding
    ON conversations (binding_channel, binding_account_id, binding_external_group_id)
    WHERE binding_channel IS NOT NULL;
CREATE UNIQUE INDEX conversations_direct_pair
    ON conversations (direct_user_low, direct_user_high)
    WHERE direct_user_low IS NOT NULL;

-- Current members only; who left is in conversation_membership_changes.
CREATE TABLE conversation_members (
    conversation_id    uuid        NOT NULL REFERENCES conversations,
    user_id            uuid        NOT NULL,
    role               smallint    NOT NULL,           -- MemberRole
    preferred_channel  smallint    NOT NULL DEFAULT 0,  -- chat4all.channel.v1.Channel
    join_time          timestamptz NOT NULL,
    join_seq           bigint      NOT NULL,           -- the ADDED change; orders the member list
    PRIMARY KEY (conversation_id, user_id)
);

-- ListConversations filtered by member.
CREATE INDEX conversation_members_by_user ON conversation_members (user_id, conversation_id);

-- Never rewritten. seq is per conversation, assigned while holding the
-- conversation row, so seq order is commit order and a seq cursor has no gaps.
CREATE TABLE conversation_membership_changes (
    conversation_id  uuid        NOT NULL REFERENCES conversations,
    seq              bigint      NOT NULL,
    user_id          uuid        NOT NULL,
    action           smallint    NOT NULL,  -- MembershipAction
    role             smallint    NOT NULL,  -- MemberRole
    reason           text        NOT NULL DEFAULT '',
    request_id       uuid        NOT NULL,
    change_time      timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- AIP-155 idempotency: one row per request_id, claimed first in the transaction
-- that makes the change, so a concurrent duplicate waits on the row and then
-- answers from it. The answer is the conversation's state when the retry arrives.
CREATE TABLE conversation_requests (
    request_id       uuid        PRIMARY KEY,
    method           text        NOT NULL,
    request_hash     bytea       NOT NULL,  -- sha256 of the normalised request
    -- Deferred: CreateConversation claims its request before the conversation row exists.
    conversation_id  uuid        NOT NULL REFERENCES conversations DEFERRABLE INITIALLY DEFERRED,
    create_time      timestamptz NOT NULL DEFAULT now()
);
