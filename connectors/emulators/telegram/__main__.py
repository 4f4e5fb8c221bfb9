"""python -m connectors.emulators.telegram [--host H] [--port P] [--token T ...] [--no-limits] [--seed N]

Options fall back to C4A_EMULATOR_HOST, C4A_EMULATOR_PORT (or the platform's C4A_HTTP_PORT), C4A_EMULATOR_TOKENS
(comma-separated) and C4A_EMULATOR_SEED.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from aiohttp import web

from .app import create_app
from .config import EmulatorConfig, RateLimits, WebhookPolicy
from .state import TOKEN_PATTERN


def parse_args(argv: list[str] | None = None) -> EmulatorConfig:
    env = os.environ
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m connectors.emulators.telegram", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=env.get("C4A_EMULATOR_HOST", defaults.host))
    parser.add_argument("--port", type=int,
                        default=int(env.get("C4A_EMULATOR_PORT") or env.get("C4A_HTTP_PORT") or defaults.port))
    parser.add_argument("--token", action="append", default=None,
                        help="a valid bot token (repeat); by default any well-formed token is valid")
    parser.add_argument("--no-limits", action="store_true", help="turn the platform's rate limits off")
    parser.add_argument("--seed", type=int, default=int(env["C4A_EMULATOR_SEED"]) if env.get("C4A_EMULATOR_SEED")
                        else None, help="seed of every random choice (update ids, file ids, faults)")
    parser.add_argument("--record-cap", type=int, default=defaults.record_cap,
                        help="requests and sent messages kept in memory")
    parser.add_argument("--file-store-mb", type=int, default=defaults.file_store_bytes // (1024 * 1024))
    parser.add_argument("--webhook-max-attempts", type=int, default=defaults.webhook.max_attempts)
    parser.add_argument("--webhook-initial-backoff", type=float, default=defaults.webhook.initial_backoff_s)
    parser.add_argument("--webhook-max-backoff", type=float, default=defaults.webhook.max_backoff_s)
    parser.add_argument("--webhook-timeout", type=float, default=defaults.webhook.timeout_s)
    parser.add_argument("--log-level", default=env.get("C4A_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)

    tokens = args.token
    if tokens is None and env.get("C4A_EMULATOR_TOKENS"):
        tokens = [token.strip() for token in env["C4A_EMULATOR_TOKENS"].split(",") if token.strip()]
    for token in tokens or ():
        if not TOKEN_PATTERN.fullmatch(token):
            parser.error(f"{token!r} is not a bot token (<bot id>:<35 characters of A-Za-z0-9_->)")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        tokens=tuple(tokens or ()),
        seed=args.seed,
        record_cap=args.record_cap,
        message_cap=args.record_cap,
        file_store_bytes=args.file_store_mb * 1024 * 1024,
        limits=RateLimits(enabled=not args.no_limits),
        webhook=WebhookPolicy(
            initial_backoff_s=args.webhook_initial_backoff,
            max_backoff_s=args.webhook_max_backoff,
            max_attempts=args.webhook_max_attempts,
            timeout_s=args.webhook_timeout,
        ),
    )


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    try:
        import uvloop
    except ImportError:  # optional: the standard loop works too
        uvloop = None
    if uvloop is not None:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    def ready(_: object) -> None:
        print(f"telegram emulator listening on http://{config.host}:{config.port}", flush=True)

    web.run_app(
        create_app(config),
        host=config.host,
        port=config.port,
        access_log=None,
        shutdown_timeout=2.0,
        print=ready,
    )


if __name__ == "__main__":
    sys.exit(main())
