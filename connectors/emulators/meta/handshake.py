"""Meta's webhook verification handshake, made by the emulator before it saves
a subscription:

    GET <callback>?hub.mode=subscribe&hub.challenge=<random>&hub.verify_token=<token>

The callback proves it is the intended receiver by answering 200 with exactly
the challenge as its body (surrounding whitespace tolerated).
"""

from __future__ import annotations

import random
from typing import Any

import aiohttp
from yarl import URL

_MAX_ANSWER = 4096


async def verify_callback(session: aiohttp.ClientSession, callback_url: str, verify_token: str,
                          rng: random.Random, timeout_s: float = 10.0) -> dict[str, Any]:
    """{"ok", "challenge", "http_status", "answer", "error"} of one handshake."""
    challenge = str(rng.randrange(10**9, 2 * 10**9))
    url = URL(callback_url).update_query(
        {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token})
    result: dict[str, Any] = {"ok": False, "challenge": challenge, "http_status": None, "answer": None,
                              "error": None}
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s),
                               allow_redirects=False) as response:
            result["http_status"] = response.status
            answer = (await response.content.read(_MAX_ANSWER)).decode("utf-8", errors="replace")
            result["answer"] = answer
    except (TimeoutError, aiohttp.ClientError) as error:
        result["error"] = f"the callback could not be reached: {error or 'timeout'}"
        return result
    if result["http_status"] != 200:
        result["error"] = f"the callback answered HTTP {result['http_status']}, not 200"
    elif answer.strip() != challenge:
        result["error"] = "the callback's answer is not the challenge"
    else:
        result["ok"] = True
    return result
