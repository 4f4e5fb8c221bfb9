-- A call without x-chat4all-client-id is an internal call now (services/runtime/tenancy.py),
-- no longer the shared "anonymous" client: what such calls created is unowned (''), seen by
-- internal callers only, like every other service's unowned resources.
UPDATE webhooks SET client_id = '' WHERE client_id = 'anonymous';
UPDATE webhook_requests SET client_id = '' WHERE client_id = 'anonymous';
