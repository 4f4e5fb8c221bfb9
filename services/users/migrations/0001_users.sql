-- Users and their platform identities. Only UserService reads and writes these
-- tables; other services call its gRPC API. Channels are stored as their
-- chat4all.channel.v1.Channel numbers, which never change.

CREATE TABLE users (
    user_id              uuid        PRIMARY KEY,
    display_name         text        NOT NULL,
    preferred_channel    smallint    NOT NULL DEFAULT 0,
    -- Set by a merge; a merged user keeps no identities.
    merged_into_user_id  uuid        REFERENCES users,
    create_time          timestamptz NOT NULL DEFAULT now(),
    CHECK (merged_into_user_id IS DISTINCT FROM user_id)
);

-- The primary key is both the ResolveIdentity lookup and the rule that an
-- identity belongs to one user: concurrent links of one identity meet here.
CREATE TABLE user_identities (
    channel       smallint    NOT NULL CHECK (channel > 1),  -- not UNSPECIFIED, not INTERNAL
    external_id   text        NOT NULL CHECK (external_id <> ''),
    user_id       uuid        NOT NULL REFERENCES users,
    display_name  text        NOT NULL DEFAULT '',
    link_time     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, external_id)
);

-- A user's identities, in the order they were linked (GetUser and every answer).
CREATE INDEX user_identities_by_user ON user_identities (user_id, link_time);

-- AIP-155 idempotency: one row per request_id, claimed first in the transaction
-- that makes the change, so a concurrent duplicate waits on the row and then
-- answers from it. The answer is the user's state when the retry arrives.
CREATE TABLE user_requests (
    request_id    uuid        PRIMARY KEY,
    method        text        NOT NULL,
    request_hash  bytea       NOT NULL,  -- sha256 of the normalised request
    -- Deferred: CreateUser claims its request before the user row exists.
    user_id       uuid        NOT NULL REFERENCES users DEFERRABLE INITIALLY DEFERRED,
    create_time   timestamptz NOT NULL DEFAULT now()
);
