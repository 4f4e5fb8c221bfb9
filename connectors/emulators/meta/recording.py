"""What the emulator received and did, kept in memory for the control API.

Records are plain JSON-ready dicts with an increasing `seq`; the newest
`cap` are kept. Listing filters on record fields by their string value (and
`path` by substring), plus `since_seq` and `limit`.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from aiohttp import web

from .auth import recorded_headers
from .wire import GraphBody


class RecordLog:
    def __init__(self, cap: int):
        self._records: deque[dict[str, Any]] = deque(maxlen=cap)
        self._seq = itertools.count(1)

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {"seq": next(self._seq), **record}
        self._records.append(record)
        return record

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def clear(self) -> None:
        self._records.clear()

    def find(self, **fields: Any) -> dict[str, Any] | None:
        """The newest record whose fields equal these."""
        for record in reversed(self._records):
            if all(record.get(name) == value for name, value in fields.items()):
                return record
        return None

    def filter(self, query: Mapping[str, str], keys: Iterable[str]) -> list[dict[str, Any]]:
        """Records matching the query's `keys` (exact, as strings), `path` (substring),
        `since_seq` and `limit`; a bad number raises ValueError."""
        since = int(query["since_seq"]) if query.get("since_seq") else None
        limit = int(query["limit"]) if query.get("limit") else None
        wanted = {key: query[key] for key in keys if query.get(key) not in (None, "")}
        path = query.get("path") or None
        found = []
        for record in self._records:
            if since is not None and record["seq"] <= since:
                continue
            if path is not None and path not in str(record.get("path", "")):
                continue
            if any(str(record.get(key)) != value for key, value in wanted.items()):
                continue
            found.append(record)
            if limit is not None and len(found) >= limit:
                break
        return found


def request_record(request: web.Request, body: GraphBody, tags: Mapping[str, Any]) -> dict[str, Any]:
    """A Graph API request as the control API lists it (answer status filled in later)."""
    return {
        "method": request.method,
        "path": request.path,
        "query": {key: value for key, value in request.query.items() if key != "access_token"},
        "headers": recorded_headers(request),
        "body": body.recorded(),
        "received_at": time.time(),
        **tags,
        "status": None,
        "error": None,
    }
