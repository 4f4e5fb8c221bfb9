-- Which client each conversation belongs to (services/runtime/tenancy.py): the client whose
-- call created it. '' is "created by an internal call", rows older than this migration
-- included, and visible to internal callers only. A deployment whose existing conversations
-- belong to one client gives them to it once:
--   UPDATE conversations SET owner_client_id = '<client>' WHERE owner_client_id = '';
ALTER TABLE conversations ADD COLUMN owner_client_id text NOT NULL DEFAULT '';

-- ListConversations of a client: its own, newest first.
CREATE INDEX conversations_by_owner_newest_first
    ON conversations (owner_client_id, create_time DESC, conversation_id DESC);

-- One direct conversation per pair and one mirror of a platform group per client: each client
-- has its own (the router finds the one of the client owning its platform accounts), and a
-- conflict never names another client's conversation.
DROP INDEX conversations_by_platform_binding;
CREATE UNIQUE INDEX conversations_by_platform_binding
    ON conversations (owner_client_id, binding_channel, binding_account_id, binding_external_group_id)
    WHERE binding_channel IS NOT NULL;
DROP INDEX conversations_direct_pair;
CREATE UNIQUE INDEX conversations_direct_pair
    ON conversations (owner_client_id, direct_user_low, direct_user_high)
    WHERE direct_user_low IS NOT NULL;
