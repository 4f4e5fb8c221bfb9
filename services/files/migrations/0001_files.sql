-- Files and their uploads. Only FileService reads and writes these tables; the bytes live in
-- S3 under object_key. States are chat4all.files.v1.FileState numbers, which never change.

CREATE TABLE files (
    file_id                uuid        PRIMARY KEY,
    -- Our id for the upload, handed to clients; the S3 one stays internal.
    upload_id              uuid        NOT NULL UNIQUE,
    s3_upload_id           text        NOT NULL,
    object_key             text        NOT NULL,
    filename               text        NOT NULL CHECK (filename <> ''),
    declared_content_type  text        NOT NULL CHECK (declared_content_type <> ''),
    detected_content_type  text        NOT NULL DEFAULT '',
    size_bytes             bigint      NOT NULL CHECK (size_bytes > 0),
    sha256                 text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    part_size_bytes        bigint      NOT NULL CHECK (part_size_bytes > 0),
    state                  smallint    NOT NULL,
    failure_reason         text        NOT NULL DEFAULT '',
    create_time            timestamptz NOT NULL DEFAULT now(),
    update_time            timestamptz NOT NULL DEFAULT now(),
    -- When the part URLs and the upload expire.
    expire_time            timestamptz NOT NULL
);

-- AIP-155 idempotency for CreateUpload and CompleteUpload: claimed first in the transaction
-- that makes the change, so a concurrent duplicate waits on the row and answers from it.
CREATE TABLE file_requests (
    request_id    uuid        PRIMARY KEY,
    method        text        NOT NULL,
    request_hash  bytea       NOT NULL,  -- sha256 of the request
    -- Deferred: CreateUpload claims its request before the file row exists.
    file_id       uuid        NOT NULL REFERENCES files DEFERRABLE INITIALLY DEFERRED,
    create_time   timestamptz NOT NULL DEFAULT now()
);
