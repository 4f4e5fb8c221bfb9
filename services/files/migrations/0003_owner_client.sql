-- Which client each file belongs to (services/runtime/tenancy.py): the client whose call
-- created the upload; a thumbnail belongs to its original's. '' is "created by an internal
-- call" (media a connector imported, rows older than this migration): visible to internal
-- callers only. A deployment whose existing files belong to one client gives them to it once:
--   UPDATE files SET owner_client_id = '<client>' WHERE owner_client_id = '';
ALTER TABLE files ADD COLUMN owner_client_id text NOT NULL DEFAULT '';
