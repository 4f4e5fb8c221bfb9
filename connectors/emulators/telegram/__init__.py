"""A local emulator of the Telegram Bot API: a real HTTP server speaking the
real wire format, with the platform's limits, webhook delivery, injected faults
and a control API (`/_emulator/...`) for tests.

Run it with `python -m connectors.emulators.telegram --port 8081`.
"""

from .app import create_app
from .config import EmulatorConfig, RateLimits, WebhookPolicy

__all__ = ["EmulatorConfig", "RateLimits", "WebhookPolicy", "create_app"]
