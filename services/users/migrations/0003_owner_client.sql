-- Which client each user belongs to (services/runtime/tenancy.py): the client whose call
-- created it. '' is "created by an internal call", rows older than this migration included,
-- and visible to internal callers only. A deployment whose existing users belong to one client
-- gives them to it once (identities follow their user):
--   UPDATE users SET owner_client_id = '<client>' WHERE owner_client_id = '';
ALTER TABLE users ADD COLUMN owner_client_id text NOT NULL DEFAULT '';
-- The target of the identities' reference below.
ALTER TABLE users ADD CONSTRAINT users_owned UNIQUE (user_id, owner_client_id);

-- Identities are per client: one WhatsApp number may be a user of two clients, and resolving
-- it (ResolveIdentity, the inbound path) looks within one client. The owner is the user's,
-- copied so that uniqueness and lookup stay one index, and kept equal to it by the reference
-- (ON UPDATE CASCADE: giving a user to a client takes its identities along).
ALTER TABLE user_identities ADD COLUMN owner_client_id text NOT NULL DEFAULT '';
ALTER TABLE user_identities DROP CONSTRAINT user_identities_pkey;
ALTER TABLE user_identities ADD PRIMARY KEY (owner_client_id, channel, external_id);
ALTER TABLE user_identities ADD CONSTRAINT user_identities_owned
    FOREIGN KEY (user_id, owner_client_id) REFERENCES users (user_id, owner_client_id) ON UPDATE CASCADE;
