-- API keys and the CreateApiKey request log. Only the auth service reads and writes these
-- tables. Secrets are never stored: only SHA-256 of each (services/auth/credentials.py says
-- why a fast hash is right), and, for an idempotent retry, the random part sealed with a pad
-- only the request's request_id unlocks. Scopes are stored as their protobuf numbers.

CREATE TABLE api_keys (
    key_id               text        PRIMARY KEY,  -- 16 hex digits, the public part of the secret
    client_id            text        NOT NULL,     -- the client (tenant) the key acts as
    display_name         text        NOT NULL DEFAULT '',
    scopes               smallint[]  NOT NULL,     -- chat4all.auth.v1.Scope numbers
    requests_per_second  integer     NOT NULL DEFAULT 0 CHECK (requests_per_second >= 0),  -- 0: the default
    secret_hash          bytea       NOT NULL,     -- SHA-256 of the secret
    create_time          timestamptz NOT NULL DEFAULT now(),
    revoke_time          timestamptz
);

-- ListApiKeys: newest first, keyset cursor (create_time, key_id), for every client or one.
CREATE INDEX api_keys_newest ON api_keys (create_time DESC, key_id DESC);
CREATE INDEX api_keys_by_client ON api_keys (client_id, create_time DESC, key_id DESC);

-- One row per CreateApiKey request_id (AIP-155), per calling client.
CREATE TABLE api_key_requests (
    -- SHA-256 of (calling client, request_id): the request_id itself unseals the secret, so it
    -- is not kept.
    request_key    bytea       PRIMARY KEY,
    request_hash   bytea       NOT NULL,  -- of the request as sent: the same request_id with another request is refused
    -- Claimed before the key is written, in the same transaction.
    key_id         text        NOT NULL REFERENCES api_keys DEFERRABLE INITIALLY DEFERRED,
    sealed_secret  bytea       NOT NULL,
    create_time    timestamptz NOT NULL DEFAULT now()
);
