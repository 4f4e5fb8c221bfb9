"""Who is calling: the client id that scopes idempotency keys and, later, access.

Until authentication lands at the front door, a client names itself in the
`x-chat4all-client-id` metadata; calls without it share the "anonymous" client.
"""

from __future__ import annotations

import grpc

CLIENT_ID_METADATA = "x-chat4all-client-id"
ANONYMOUS = "anonymous"


def client_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == CLIENT_ID_METADATA and value:
            return str(value)[:128]
    return ANONYMOUS
