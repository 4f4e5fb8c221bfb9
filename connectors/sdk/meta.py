"""What the two Meta platforms (WhatsApp Cloud API, Instagram Messaging) share:
the Graph API's error format and its throttling codes, and the webhook contract
(the `hub.*` verification handshake and `X-Hub-Signature-256` over the raw body).

Graph API errors are `{"error":{"message","type","code","error_subcode",
"error_data":{"details"},"fbtrace_id"}}`; the code, not the HTTP status, says
what happened, and maps onto MessageConnector's error contract:

  rate codes (4, 17, 32, 613, 80002, 80006, 130429, 131056)   RESOURCE_EXHAUSTED + retry-after
  5xx, codes 1, 2, 131000, 131016 (service unavailable)        UNAVAILABLE (transient)
  190 (token invalid or expired), 0 with HTTP 401              UNAUTHENTICATED (an operator fixes it)
  10, 200-299 (permissions), 131047/131051/131026/551/...      FAILED_PRECONDITION (refused in this state)
  anything else (100, 131008, 131009...)                        INVALID_ARGUMENT (this message is wrong)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from connectors.sdk import metrics
from connectors.sdk.http import HttpAnswer
from connectors.sdk.platform import PlatformThrottled
from services.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ServiceError,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger("chat4all.connector.meta")

SIGNATURE_HEADER = "X-Hub-Signature-256"
# Meta states no retry time for its rate errors; these are the waits its docs suggest.
_RATE_CODES = {4: 60.0, 17: 60.0, 32: 60.0, 613: 60.0, 80002: 60.0, 80006: 60.0, 130429: 1.0, 131056: 6.0}
# Per-recipient rate codes (hold the recipient's bucket, not the account's).
RECIPIENT_RATE_CODES = {131056}
_TRANSIENT_CODES = {1, 2, 131000, 131016}
# Refused in the current state of the conversation or account, not because of the message.
_PRECONDITION_CODES = {10, 131026, 131031, 131042, 131045, 131047, 131051, 131052, 132000, 132001, 133010, 551}


def graph_error(platform: str, operation: str, answer: HttpAnswer) -> ServiceError:
    """The runtime error for a Graph API call that did not succeed."""
    error = answer.json_object().get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else 0
    subcode = error.get("error_subcode")
    details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
    text = str(error.get("message") or f"HTTP {answer.status}")
    if details:
        text = f"{text}: {details}"
    message = f"{platform} {operation} failed: ({code}{f'/{subcode}' if subcode else ''}) {text}"
    if code in _RATE_CODES or answer.status == 429:
        wait = answer.retry_after_header() or _RATE_CODES.get(code, 1.0)
        return PlatformThrottled(message, retry_after_seconds=wait, scope="recipient" if code in RECIPIENT_RATE_CODES else "")
    if answer.status >= 500 or code in _TRANSIENT_CODES:
        return Unavailable(message)
    if code == 190 or answer.status == 401:
        return Unauthenticated(f"{message} (the access token is rejected)")
    if code in _PRECONDITION_CODES or 200 <= code < 300:
        return FailedPrecondition(message)
    return InvalidArgument(message)


def signature_valid(raw_body: bytes, header: str, app_secret: str) -> bool:
    """X-Hub-Signature-256 is "sha256=" + HMAC-SHA256(app secret, the raw body) in hex."""
    scheme, _, given = header.partition("=")
    if scheme != "sha256" or not given:
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())


# Handles one verified envelope; raises to make Meta deliver it again (answered 500).
EnvelopeHandler = Callable[[dict[str, Any]], Awaitable[None]]


class MetaWebhook:
    """The two handlers of one Meta webhook path: GET (handshake) and POST (events)."""

    def __init__(self, platform: str, expected_object: str, app_secret: str, verify_token: str, handle: EnvelopeHandler):
        self.platform = platform
        self.expected_object = expected_object
        self._secret = app_secret
        self._verify_token = verify_token.encode()
        self._handle = handle

    async def handshake(self, request: web.Request) -> web.Response:
        """Answer the subscription check with the challenge, only when the token is ours."""
        query = request.query
        given = query.get("hub.verify_token", "").encode()
        if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(given, self._verify_token):
            log.warning("webhook verification refused", extra={"connector": self.platform, "remote": request.remote})
            return web.Response(status=403, text="verification refused")
        return web.Response(text=query.get("hub.challenge", ""), content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        header = request.headers.get(SIGNATURE_HEADER, "")
        if not header:
            metrics.INBOUND.labels(self.platform, "webhook", "unauthorized").inc()
            return web.Response(status=401, text="missing X-Hub-Signature-256")
        if not signature_valid(raw, header, self._secret):
            metrics.INBOUND.labels(self.platform, "webhook", "unauthorized").inc()
            log.warning("webhook with a wrong signature", extra={"connector": self.platform, "remote": request.remote})
            return web.Response(status=403, text="signature does not match")
        try:
            envelope = json.loads(raw)
        except ValueError:
            return web.Response(status=400, text="the body is not JSON")
        if not isinstance(envelope, dict) or envelope.get("object") != self.expected_object:
            # Signed by Meta but not ours to handle (another product subscribed to this app): accept.
            log.info("webhook for another object ignored", extra={"connector": self.platform})
            return web.Response(status=200)
        try:
            await self._handle(envelope)
        except Exception:
            log.exception("webhook not handled; Meta delivers it again", extra={"connector": self.platform})
            return web.Response(status=500, text="not stored; deliver it again")
        return web.Response(status=200)
