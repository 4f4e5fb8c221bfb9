-- Webhooks, where each one follows its conversations' event streams, and the durable
-- delivery queue that doubles as the delivery log. Only WebhookService reads and writes these
-- tables; conversation events come from MessageService's gRPC streams, never its tables.
-- Enums are stored as their protobuf numbers, which never change.

CREATE TABLE webhooks (
    webhook_id      uuid        PRIMARY KEY,
    client_id       text        NOT NULL,  -- the owner: only they see or delete it
    url             text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    -- WebhookEventType numbers; empty: every type.
    event_types     smallint[]  NOT NULL DEFAULT '{}',
    -- The HMAC key; kept readable because every attempt is signed with it.
    signing_secret  text        NOT NULL,
    create_time     timestamptz NOT NULL DEFAULT now()
);

-- ListWebhooks: the client's, newest first, keyset cursor (create_time, webhook_id).
CREATE INDEX webhooks_by_client ON webhooks (client_id, create_time DESC, webhook_id DESC);

-- One row per (webhook, conversation): the stream one dispatcher follows, and where it stands.
-- The cursor moves in the same transaction that queues the event, so a restart resumes right
-- after the last queued event: nothing lost, nothing queued twice. The lease says which
-- replica follows it; writes check it, so a replica that lost the lease cannot move the cursor.
CREATE TABLE webhook_sources (
    webhook_id       uuid        NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    conversation_id  uuid        NOT NULL,
    position         integer     NOT NULL,  -- order in the filter, as the client gave it
    cursor           text        NOT NULL,  -- StreamConversationEvents after_cursor
    lease_owner      text,
    lease_until      timestamptz,
    PRIMARY KEY (webhook_id, conversation_id)
);

-- One row per event queued for a webhook. seq orders the events of a (webhook, conversation)
-- lane: only the lowest PENDING seq of a lane may be attempted, which keeps conversation order.
CREATE TABLE webhook_deliveries (
    delivery_id        uuid        PRIMARY KEY,
    seq                bigserial   NOT NULL UNIQUE,
    webhook_id         uuid        NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    conversation_id    uuid        NOT NULL,
    event_id           uuid        NOT NULL,
    event_type         smallint    NOT NULL,  -- WebhookEventType
    payload            bytea       NOT NULL,  -- the exact body of every attempt
    state              smallint    NOT NULL DEFAULT 1 CHECK (state IN (1, 2, 3)),  -- WebhookDeliveryState
    attempt_count      integer     NOT NULL DEFAULT 0,
    next_attempt_time  timestamptz,           -- PENDING only
    -- Set while an attempt is in flight; another replica may take over once it lapses.
    lease_token        uuid,
    lease_until        timestamptz,
    last_http_status   integer     NOT NULL DEFAULT 0,
    last_error         text        NOT NULL DEFAULT '',
    create_time        timestamptz NOT NULL DEFAULT now(),
    complete_time      timestamptz,
    -- An event is queued once per webhook, even if a stream were read twice.
    UNIQUE (webhook_id, event_id)
);

-- The dispatcher's view: pending deliveries by lane, in order.
CREATE INDEX webhook_deliveries_pending
    ON webhook_deliveries (webhook_id, conversation_id, seq) WHERE state = 1;
-- The dispatcher's clock: what is due next.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_time) WHERE state = 1;
-- ListWebhookDeliveries: newest first, optionally by state.
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, seq DESC);
CREATE INDEX webhook_deliveries_log_by_state ON webhook_deliveries (webhook_id, state, seq DESC);

-- One row per attempt, written when it starts and completed with its outcome; one that never
-- got an outcome was cut short by a stopping dispatcher.
CREATE TABLE webhook_delivery_attempts (
    delivery_id       uuid        NOT NULL REFERENCES webhook_deliveries ON DELETE CASCADE,
    attempt_number    integer     NOT NULL,
    start_time        timestamptz NOT NULL,
    duration_seconds  double precision,  -- NULL until the outcome is recorded
    http_status       integer     NOT NULL DEFAULT 0,  -- 0: no HTTP answer
    error             text        NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, attempt_number)
);

-- AIP-155 idempotency, per client: one row per request_id, claimed first in the transaction
-- that makes the change, so a concurrent duplicate waits on the row and then answers from it.
-- No foreign key: the row outlives a deleted webhook so a retried delete still answers.
CREATE TABLE webhook_requests (
    client_id     text        NOT NULL,
    request_id    uuid        NOT NULL,
    method        text        NOT NULL,
    request_hash  bytea       NOT NULL,  -- sha256 of the request
    webhook_id    uuid        NOT NULL,
    create_time   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, request_id)
);
