"""python -m connectors.emulators.whatsapp --host H --port P [--seed N] [--app-secret S] [--access-token T ...]
    [--verify-token V] [--webhook-url URL] [--phone-number-id ID ...] [--waba-id ID] [--no-limits] [--no-window]

Options fall back to C4A_EMULATOR_HOST, C4A_EMULATOR_PORT (or C4A_HTTP_PORT), C4A_EMULATOR_SEED,
C4A_WHATSAPP_APP_SECRET, C4A_WHATSAPP_ACCESS_TOKEN (comma-separated), C4A_EMULATOR_WEBHOOK_URL,
C4A_EMULATOR_VERIFY_TOKEN and C4A_WHATSAPP_PHONE_NUMBER_IDS (comma-separated).
Defaults run locally: app secret "local-app-secret", token "local-access-token", port 8082, any
numeric phone_number_id.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from ..meta.cli import build_parser, common_config, run
from .app import create_app
from .config import WhatsAppConfig, WhatsAppLimits


def parse_args(argv: list[str] | None = None) -> WhatsAppConfig:
    defaults = WhatsAppConfig()
    parser = build_parser("python -m connectors.emulators.whatsapp", __doc__ or "", "WHATSAPP", defaults.port)
    parser.add_argument("--phone-number-id", action="append", default=None,
                        help="a business phone_number_id (repeat); by default any numeric id is accepted")
    parser.add_argument("--waba-id", default=defaults.waba_id, help="WhatsApp Business Account id in webhooks")
    parser.add_argument("--no-window", action="store_true",
                        help="do not enforce the 24 h customer-service window (no 131047 failures)")
    args = parser.parse_args(argv)
    phone_ids = args.phone_number_id
    if phone_ids is None:
        phone_ids = [p.strip() for p in os.environ.get("C4A_WHATSAPP_PHONE_NUMBER_IDS", "").split(",") if p.strip()]
    return WhatsAppConfig(
        **common_config(args),
        phone_number_ids=tuple(phone_ids),
        waba_id=args.waba_id,
        limits=dataclasses.replace(WhatsAppLimits(), window_enabled=not args.no_window),
    )


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    run(create_app(config), config, "whatsapp")


if __name__ == "__main__":
    sys.exit(main())
