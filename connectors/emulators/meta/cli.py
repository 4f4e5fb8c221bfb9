"""The command line both Meta emulators share.

    --host H --port P [--seed N] [--app-secret S] [--access-token T ...] [--verify-token V]
    [--webhook-url URL] [--no-limits] [--record-cap N] [--media-store-mb N]
    [--webhook-max-attempts N] [--webhook-initial-backoff S] [--webhook-max-backoff S] [--webhook-timeout S]

Fallbacks: C4A_EMULATOR_HOST, C4A_EMULATOR_PORT (or C4A_HTTP_PORT), C4A_EMULATOR_SEED,
C4A_<PLATFORM>_APP_SECRET, C4A_<PLATFORM>_ACCESS_TOKEN (comma-separated), C4A_EMULATOR_WEBHOOK_URL,
C4A_EMULATOR_VERIFY_TOKEN.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from aiohttp import web

from .config import MetaConfig, MiB
from .webhooks import WebhookPolicy


def build_parser(prog: str, description: str, env_prefix: str, default_port: int) -> argparse.ArgumentParser:
    env = os.environ
    defaults = MetaConfig()
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=env.get("C4A_EMULATOR_HOST", defaults.host))
    parser.add_argument("--port", type=int,
                        default=int(env.get("C4A_EMULATOR_PORT") or env.get("C4A_HTTP_PORT") or default_port))
    parser.add_argument("--seed", type=int, default=int(env["C4A_EMULATOR_SEED"]) if env.get("C4A_EMULATOR_SEED")
                        else None, help="seed of every random choice (ids, challenges, faults)")
    parser.add_argument("--app-secret", default=env.get(f"C4A_{env_prefix}_APP_SECRET") or defaults.app_secret,
                        help="signs webhooks (X-Hub-Signature-256)")
    tokens = [t.strip() for t in env.get(f"C4A_{env_prefix}_ACCESS_TOKEN", "").split(",") if t.strip()]
    parser.add_argument("--access-token", action="append", default=None,
                        help=f"a valid bearer token (repeat); default {tokens or list(defaults.access_tokens)}")
    parser.set_defaults(env_access_tokens=tokens or list(defaults.access_tokens))
    parser.add_argument("--verify-token", default=env.get("C4A_EMULATOR_VERIFY_TOKEN") or defaults.verify_token,
                        help="hub.verify_token of the startup subscription's handshake")
    parser.add_argument("--webhook-url", default=env.get("C4A_EMULATOR_WEBHOOK_URL") or None,
                        help="callback subscribed at startup (the handshake is retried until it answers)")
    parser.add_argument("--no-limits", action="store_true", help="turn the platform's rate limits off")
    parser.add_argument("--record-cap", type=int, default=defaults.record_cap,
                        help="requests, messages and webhook attempts kept in memory")
    parser.add_argument("--media-store-mb", type=int, default=defaults.media_store_bytes // MiB)
    parser.add_argument("--webhook-max-attempts", type=int, default=defaults.webhook.max_attempts)
    parser.add_argument("--webhook-initial-backoff", type=float, default=defaults.webhook.initial_backoff_s)
    parser.add_argument("--webhook-max-backoff", type=float, default=defaults.webhook.max_backoff_s)
    parser.add_argument("--webhook-timeout", type=float, default=defaults.webhook.timeout_s)
    parser.add_argument("--log-level", default=env.get("C4A_LOG_LEVEL", "INFO"))
    return parser


def common_config(args: argparse.Namespace) -> dict[str, Any]:
    """MetaConfig fields from parsed arguments (platform configs add their own)."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return {
        "host": args.host,
        "port": args.port,
        "seed": args.seed,
        "app_secret": args.app_secret,
        "access_tokens": tuple(args.access_token or args.env_access_tokens),
        "verify_token": args.verify_token,
        "webhook_url": args.webhook_url,
        "limits_enabled": not args.no_limits,
        "record_cap": args.record_cap,
        "deliveries_cap": args.record_cap,
        "media_store_bytes": args.media_store_mb * MiB,
        "webhook": WebhookPolicy(
            initial_backoff_s=args.webhook_initial_backoff,
            max_backoff_s=args.webhook_max_backoff,
            max_attempts=args.webhook_max_attempts,
            timeout_s=args.webhook_timeout,
        ),
    }


def run(app: web.Application, config: MetaConfig, name: str) -> None:
    try:
        import uvloop
    except ImportError:  # optional: the standard loop works too
        uvloop = None
    if uvloop is not None:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    def ready(_: object) -> None:
        print(f"{name} emulator listening on http://{config.host}:{config.port}", flush=True)

    web.run_app(app, host=config.host, port=config.port, access_log=None, shutdown_timeout=2.0, print=ready)
