"""`python -m services.auth create-key --client-id ops --scopes admin,read,send [--name ...]`

Makes a key straight in the key store (C4A_POSTGRES_DSN), applying the auth migrations first:
the way to the first admin key, since CreateApiKey itself needs one. The secret is printed
once, alone on stdout (so a script can capture it); what the key is goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from chat4all.auth.v1 import message_pb2 as pb, request_response_pb2 as rr

from services.auth import scopes
from services.auth.servicer import MIGRATIONS, new_key
from services.auth.settings import AuthSettings
from services.auth.store import ApiKeyStore
from services.runtime import postgres
from services.runtime.callers import ANONYMOUS
from services.runtime.config import load_settings
from services.runtime.errors import ServiceError
from services.runtime.idempotency import request_hash


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.auth", description="Chat4All API keys")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-key", help="make an API key and print its secret once")
    create.add_argument("--client-id", required=True, help="the client (tenant) the key acts as")
    create.add_argument("--scopes", required=True, help=f"comma-separated: {', '.join(scopes.BY_NAME)}")
    create.add_argument("--name", default="", help="a name for people")
    create.add_argument("--requests-per-second", type=int, default=0, help="0: the deployment's default")
    args = parser.parse_args(argv)

    names = [name.strip() for name in args.scopes.split(",") if name.strip()]
    unknown = [name for name in names if name not in scopes.BY_NAME]
    if unknown:
        parser.error(f"unknown scope {', '.join(unknown)} (known: {', '.join(scopes.BY_NAME)})")
    request = rr.CreateApiKeyRequest(
        request_id=str(uuid.uuid4()),
        api_key=pb.ApiKey(
            client_id=args.client_id,
            display_name=args.name,
            scopes=[scopes.BY_NAME[name] for name in names],
            requests_per_second=args.requests_per_second,
        ),
    )
    try:
        key, secret = asyncio.run(_create(request))
    except ServiceError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    print(
        f"created key {key.key_id} for client {key.client_id} with scopes {scopes.names(list(key.scopes))}; "
        "the secret below is shown only now:",
        file=sys.stderr,
    )
    print(secret)
    return 0


async def _create(request: rr.CreateApiKeyRequest) -> tuple[pb.ApiKey, str]:
    new = new_key(request)
    settings = load_settings(AuthSettings)
    pool = await postgres.open_pool(settings.postgres_dsn, 1, 1, "auth-cli")
    try:
        await postgres.migrate(pool, "auth", MIGRATIONS)
        digest = request_hash("CreateApiKey", request)
        return await ApiKeyStore(pool).create_key(ANONYMOUS, uuid.UUID(request.request_id), digest, new)
    finally:
        await pool.close()
