"""Authentication and authorisation at the front door.

One process serves, on one gRPC port, `chat4all.auth.v1.ApiKeyService` (API keys: created,
listed, revoked; stored hashed in PostgreSQL) and Envoy's external authorization API
(`envoy.service.auth.v3.Authorization/Check`), which Envoy asks about every client request:
is the key valid, does it have the scope the RPC's `required_scope` option names, is its client
within its rate limit (a token bucket in Redis shared by every replica).
"""
