"""A local emulator of Instagram Messaging (Meta Graph API Send API and
webhooks): the real wire format, the platform's call limits and 24 h reply
window, echo and read webhooks signed like Meta's, injected faults and a
control API (`/_emulator/...`) for tests.

Run it with `python -m connectors.emulators.instagram --port 8083`.
"""

from .app import create_app
from .config import InstagramConfig, InstagramLimits, InstagramPolicy

__all__ = ["InstagramConfig", "InstagramLimits", "InstagramPolicy", "create_app"]
