-- Who owns a file, the processing queue (content type, malware scan, thumbnail) and thumbnails.

ALTER TABLE files
    -- The Chat4All user the file belongs to; NULL for media a connector imported from a platform.
    ADD COLUMN owner_user_id           uuid,
    -- The thumbnail, itself a CLEAN file (same owner, object beside the original's); NULL when
    -- there is none.
    ADD COLUMN thumbnail_file_id       uuid REFERENCES files,
    -- Processing queue, for PROCESSING files only. No worker takes a file before this time: it
    -- is the lease of the worker processing it (processing_lease_token set, renewed while it
    -- works), or the wait before the next try (token NULL). NULL: take it now.
    ADD COLUMN processing_lease_until  timestamptz,
    ADD COLUMN processing_lease_token  uuid,
    -- Tries that failed or were cut short (counted when a worker takes the file); the file is
    -- FAILED when they reach C4A_PROCESSING_MAX_ATTEMPTS.
    ADD COLUMN processing_attempts     integer NOT NULL DEFAULT 0,
    -- Tries put off because clamd or S3 could not be reached: not the file's fault, so never
    -- counted as attempts; they only lengthen the wait before the next try.
    ADD COLUMN processing_deferrals    integer NOT NULL DEFAULT 0,
    -- Why the last try did not finish, for operators; failure_reason once the file is FAILED.
    ADD COLUMN processing_error        text    NOT NULL DEFAULT '';

-- The processing worker's claims and the sweeper's scan for abandoned uploads stay small
-- whatever the number of settled files.
CREATE INDEX files_processing_due ON files (processing_lease_until NULLS FIRST) WHERE state = 2;
CREATE INDEX files_uploading_expiry ON files (expire_time) WHERE state = 1;
