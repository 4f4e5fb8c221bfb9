-- The message store of the messaging domain. Written by the router (the only
-- writer of a conversation at a time, as owner of its Kafka partition) and by
-- the API for idempotency keys and replays; read by the API for history,
-- event streams and dead letters. Protobuf columns hold the API's own shapes.

-- SendMessage idempotency (AIP-155): one row per (client, request_id), written
-- in the same transaction that waits for the Kafka acknowledgement, so a
-- concurrent duplicate blocks on the row and then reads the stored answer.
CREATE TABLE idempotency_keys (
    client_id     text        NOT NULL,
    request_id    uuid        NOT NULL,
    request_hash  bytea       NOT NULL,
    response      bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, request_id)
);

-- Every change in a conversation, in order. seq is assigned by the single
-- writer of the conversation, so per-conversation order equals commit order
-- and a cursor (conversation_id, seq) resumes without gaps or duplicates.
CREATE TABLE conversation_events (
    conversation_id uuid        NOT NULL,
    seq             bigint      NOT NULL,
    event           bytea       NOT NULL,   -- chat4all.messaging.v1.ConversationEvent, cursor unset
    occur_time      timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE messages (
    message_id        uuid        PRIMARY KEY,
    conversation_id   uuid        NOT NULL,
    seq               bigint      NOT NULL,  -- the conversation event that created it
    sender_user_id    uuid,
    content           bytea       NOT NULL,  -- chat4all.messaging.v1.MessageContent
    origin            bytea       NOT NULL,  -- chat4all.messaging.v1.MessageOrigin
    -- Internal sends: the idempotency key again, so a message re-sent under a
    -- new id after a lost acknowledgement is still stored once.
    client_id         text,
    request_id        uuid,
    create_time       timestamptz NOT NULL,
    UNIQUE (conversation_id, seq),
    UNIQUE (client_id, request_id)
);

CREATE TABLE deliveries (
    message_id            uuid        NOT NULL REFERENCES messages ON DELETE CASCADE,
    recipient_key         text        NOT NULL,  -- user_id|channel|external_id
    recipient             bytea       NOT NULL,  -- chat4all.messaging.v1.Recipient
    status                smallint    NOT NULL,  -- chat4all.messaging.v1.DeliveryStatus
    attempt_count         integer     NOT NULL DEFAULT 0,
    platform_message_ids  text[]      NOT NULL DEFAULT '{}',
    history               bytea[]     NOT NULL DEFAULT '{}',  -- chat4all.messaging.v1.StatusChange, oldest first
    update_time           timestamptz NOT NULL,
    PRIMARY KEY (message_id, recipient_key)
);

CREATE TABLE dead_letters (
    dead_letter_id      uuid        PRIMARY KEY,
    message_id          uuid        NOT NULL REFERENCES messages ON DELETE CASCADE,
    recipient_key       text        NOT NULL,
    conversation_id     uuid        NOT NULL,
    dead_letter         bytea       NOT NULL,  -- chat4all.messaging.v1.DeadLetter
    state               smallint    NOT NULL,  -- chat4all.messaging.v1.DeadLetterState
    last_failure_time   timestamptz NOT NULL,
    replay_time         timestamptz,
    replay_request_id   uuid
);
CREATE INDEX dead_letters_by_failure ON dead_letters (last_failure_time DESC, dead_letter_id DESC);
CREATE INDEX dead_letters_by_conversation ON dead_letters (conversation_id, last_failure_time DESC, dead_letter_id DESC);
