"""A file's content type, read from its bytes by libmagic (python-magic), never taken from the
uploader's word: the first bytes say what a file is, whatever its name or declared type."""

from __future__ import annotations

import asyncio

import magic

# libmagic decides from the start of a file; 64 KiB covers every format it knows.
SNIFF_BYTES = 64 * 1024


async def detect(head: bytes) -> str:
    """The MIME type of content starting with `head` (at most SNIFF_BYTES of it), such as
    image/png, text/plain, or application/octet-stream when libmagic cannot tell."""
    # libmagic is C and blocks; python-magic serialises calls on its shared handle.
    return await asyncio.to_thread(magic.from_buffer, head[:SNIFF_BYTES], mime=True)
