"""python -m connectors.emulators.instagram --host H --port P [--seed N] [--app-secret S]
    [--access-token T[=IG_USER_ID] ...] [--verify-token V] [--webhook-url URL] [--ig-user-id ID ...]
    [--no-limits] [--no-window]

Options fall back to C4A_EMULATOR_HOST, C4A_EMULATOR_PORT (or C4A_HTTP_PORT), C4A_EMULATOR_SEED,
C4A_INSTAGRAM_APP_SECRET, C4A_INSTAGRAM_ACCESS_TOKEN (comma-separated), C4A_EMULATOR_WEBHOOK_URL,
C4A_EMULATOR_VERIFY_TOKEN and C4A_INSTAGRAM_USER_IDS (comma-separated).
Defaults run locally: app secret "local-app-secret", token "local-access-token", port 8083, any
numeric ig_user_id; `me` is the token's account (TOKEN=ID) or the first --ig-user-id
(default 17841400000000001).
"""

from __future__ import annotations

import dataclasses
import os
import sys

from ..meta.cli import build_parser, common_config, run
from .app import create_app
from .config import InstagramConfig, InstagramLimits


def parse_args(argv: list[str] | None = None) -> InstagramConfig:
    defaults = InstagramConfig()
    parser = build_parser("python -m connectors.emulators.instagram", __doc__ or "", "INSTAGRAM", defaults.port)
    parser.add_argument("--ig-user-id", action="append", default=None,
                        help="an Instagram professional account id (repeat); by default any numeric id")
    parser.add_argument("--no-window", action="store_true", help="do not enforce the 24 h reply window")
    args = parser.parse_args(argv)
    common = common_config(args)
    tokens: list[str] = []
    token_accounts: dict[str, str] = {}
    for value in common.pop("access_tokens"):
        token, _, account = value.partition("=")
        tokens.append(token)
        if account:
            token_accounts[token] = account
    accounts = args.ig_user_id
    if accounts is None:
        accounts = [a.strip() for a in os.environ.get("C4A_INSTAGRAM_USER_IDS", "").split(",") if a.strip()]
    return InstagramConfig(
        **common,
        access_tokens=tuple(tokens),
        token_accounts=token_accounts,
        ig_user_ids=tuple(accounts),
        limits=dataclasses.replace(InstagramLimits(), window_enabled=not args.no_window),
    )


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    run(create_app(config), config, "instagram")


if __name__ == "__main__":
    sys.exit(main())
