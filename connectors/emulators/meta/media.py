"""Media the emulator holds (uploads, injected inbound media) and media it
fetches from URLs given in sends.

Bytes live in memory under a total cap; the oldest are evicted first (their
ids then answer "not found", like expired media). URLs are fetched only from
loopback addresses: the emulator never reaches the internet, so any other URL
is recorded as "skipped" and treated as fetchable.
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_CHUNK = 256 * 1024


def is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme in ("http", "https") and (host in _LOCAL_HOSTS or host.startswith("127."))


def is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


@dataclass
class StoredMedia:
    id: str
    data: bytes
    mime_type: str
    filename: str | None = None
    account: str | None = None
    digest: bytes | None = None
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.digest is None:
            self.digest = hashlib.sha256(self.data).digest()

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        """Base64 of the SHA-256 digest, as the platform gives it."""
        return base64.b64encode(self.digest or b"").decode()


class MediaStore:
    def __init__(self, cap_bytes: int, rng: random.Random):
        self.cap_bytes = cap_bytes
        self.rng = rng
        self._items: OrderedDict[str, StoredMedia] = OrderedDict()
        self._issued: set[str] = set()  # deleted ids stay media ids (GET answers "does not exist")
        self._total = 0

    def new_id(self) -> str:
        # Meta media ids are 15-16 digit numbers.
        while True:
            media_id = str(self.rng.randrange(10**15, 10**16))
            if media_id not in self._issued:
                self._issued.add(media_id)
                return media_id

    def issued(self, media_id: str) -> bool:
        return media_id in self._issued

    def add(self, data: bytes, mime_type: str, filename: str | None = None,
            account: str | None = None, digest: bytes | None = None) -> StoredMedia:
        stored = StoredMedia(self.new_id(), data, mime_type, filename, account, digest)
        self._items[stored.id] = stored
        self._total += stored.size
        while self._total > self.cap_bytes and len(self._items) > 1:
            _, oldest = self._items.popitem(last=False)
            self._total -= oldest.size
        return stored

    def get(self, media_id: str) -> StoredMedia | None:
        return self._items.get(media_id)

    def delete(self, media_id: str) -> bool:
        stored = self._items.pop(media_id, None)
        if stored is None:
            return False
        self._total -= stored.size
        return True

    def clear(self) -> None:
        self._items.clear()
        self._issued.clear()
        self._total = 0


@dataclass
class FetchResult:
    url: str
    outcome: str  # "ok", "failed" or "skipped" (not a loopback URL: never fetched)
    http_status: int | None = None
    size: int | None = None
    content_type: str | None = None
    sha256: str | None = None
    too_large: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def fetch_url(session: aiohttp.ClientSession, url: str, limit: int, timeout_s: float = 30.0) -> FetchResult:
    """Download `url` (loopback only) and measure it; stops reading past `limit` bytes."""
    if not is_loopback_url(url):
        return FetchResult(url, "skipped", error="not a loopback URL: the emulator does not fetch it")
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            content_type = response.content_type if response.headers.get("Content-Type") else None
            result = FetchResult(url, "failed", http_status=response.status, content_type=content_type)
            if response.status != 200:
                result.error = f"Downloading media from weblink failed with http code {response.status}, " \
                               f"status message {response.reason or ''}".rstrip(", ")
                return result
            declared = response.content_length
            if declared is not None and declared > limit:
                result.size, result.too_large = declared, True
                return result
            digest = hashlib.sha256()
            size = 0
            async for chunk in response.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > limit:
                    result.size, result.too_large = size, True
                    return result
                digest.update(chunk)
            result.outcome, result.size = "ok", size
            result.sha256 = base64.b64encode(digest.digest()).decode()
            return result
    except (TimeoutError, aiohttp.ClientError) as error:
        return FetchResult(url, "failed", error=f"Downloading media from weblink failed: {error or 'timeout'}")
