"""One POST of one event to a webhook endpoint, signed, and what came of it.

Redirects are not followed: the client registered this URL, and a redirect could lead the
request (and its signature) somewhere else, such as an internal address.
"""

from __future__ import annotations

import contextlib
import time
from urllib.parse import urlsplit

import aiohttp

from services.webhooks import signing
from services.webhooks.delivery_queue import Attempt, Outcome
from services.webhooks.destinations import AddressNotAllowed, PublicOnlyResolver, refuse_private_host
from services.webhooks.payloads import EVENT_TYPE_NAMES

USER_AGENT = "Chat4All-Webhooks/1"
# Enough of a refusal's body to tell why, in the delivery log; the rest is never read.
_ERROR_BODY_BYTES = 300
_MAX_ERROR_CHARS = 500
# A short 2xx answer is read to its end so its keep-alive connection serves the next POST.
_DRAIN_BYTES = 64 * 1024


def open_session(concurrency: int, private_allowed: bool) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=concurrency,
        # Keeps only public addresses of every name it resolves (what aiohttp caches and connects to).
        resolver=None if private_allowed else PublicOnlyResolver(),
    )
    return aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT})


async def post(session: aiohttp.ClientSession, attempt: Attempt, timeout: float, private_allowed: bool) -> Outcome:
    # Signed now, not when queued: the timestamp tells the receiver how fresh this attempt is.
    headers = {
        "Content-Type": "application/json",
        "X-Chat4All-Event-Id": str(attempt.event_id),
        "X-Chat4All-Event-Type": EVENT_TYPE_NAMES.get(attempt.event_type, ""),
        "X-Chat4All-Webhook-Id": str(attempt.webhook_id),
        "X-Chat4All-Delivery-Attempt": str(attempt.number),
        **signing.signature_headers(attempt.secret, int(time.time()), attempt.body),
    }
    started = time.perf_counter()

    def outcome(status: int, error: str = "") -> Outcome:
        return Outcome(status, error[:_MAX_ERROR_CHARS], time.perf_counter() - started)

    try:
        if not private_allowed:
            # A literal address never reaches the resolver; names are checked there.
            refuse_private_host(urlsplit(attempt.url).hostname or "")
        async with session.post(
            attempt.url,
            data=attempt.body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            if 200 <= response.status < 300:
                if response.content_length is not None and response.content_length <= _DRAIN_BYTES:
                    # A fully read answer lets the connection be reused; the 2xx already counts.
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        await response.read()
                return outcome(response.status)
            excerpt = (await response.content.read(_ERROR_BODY_BYTES)).decode(errors="replace").strip()
            status_line = f"HTTP {response.status} {response.reason or ''}".strip()
            return outcome(response.status, f"{status_line}: {excerpt}" if excerpt else status_line)
    except AddressNotAllowed as error:
        return outcome(0, f"address not allowed: {error}")
    except TimeoutError:
        return outcome(0, f"no answer within {timeout:g} s")
    except aiohttp.ClientConnectorError as error:
        if isinstance(error.os_error, AddressNotAllowed):  # refused by PublicOnlyResolver
            return outcome(0, f"address not allowed: {error.os_error}")
        return outcome(0, f"{type(error).__name__}: {error}")
    except (aiohttp.ClientError, OSError) as error:
        return outcome(0, f"{type(error).__name__}: {error}")

