-- User-scoped webhooks (filter.user_id): one stream per webhook, MessageService.StreamUserEvents
-- of that user, which covers every conversation the user is a member of (joins and leaves
-- included). Same guarantees as webhook_sources: the cursor moves in the same transaction that
-- queues the event, and writes check the lease. Deliveries go into webhook_deliveries under
-- each event's own conversation_id, so the lanes keep per-conversation order as before.
CREATE TABLE webhook_user_sources (
    webhook_id   uuid        PRIMARY KEY REFERENCES webhooks ON DELETE CASCADE,
    user_id      uuid        NOT NULL,
    -- StreamUserEvents after_cursor: first the stream's x-chat4all-start-cursor when the
    -- webhook was created, then the cursor of the last event queued or skipped.
    cursor       text        NOT NULL,
    lease_owner  text,
    lease_until  timestamptz
);
