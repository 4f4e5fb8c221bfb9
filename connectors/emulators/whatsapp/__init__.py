"""A local emulator of the WhatsApp Business Cloud API (Meta Graph API): a real
HTTP server speaking the real wire format, with the platform's limits, the 24 h
customer-service window, status webhooks, media, signed webhook delivery with
retries, injected faults and a control API (`/_emulator/...`) for tests.

Run it with `python -m connectors.emulators.whatsapp --port 8082`.
"""

from .app import create_app
from .config import StatusPolicy, WhatsAppConfig, WhatsAppLimits

__all__ = ["StatusPolicy", "WhatsAppConfig", "WhatsAppLimits", "create_app"]
