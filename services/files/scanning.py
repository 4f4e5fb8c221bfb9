"""The malware scan: a `Scanner` says whether content is infected; `ClamdScanner` asks ClamAV's
clamd over TCP with its INSTREAM protocol, streaming the content in chunks (memory stays flat).

INSTREAM: send b"zINSTREAM\\0", then chunks framed as <4-byte big-endian length><bytes>, then a
zero-length chunk; clamd answers b"stream: OK\\0", b"stream: <signature> FOUND\\0", or an error
(b"INSTREAM size limit exceeded. ERROR\\0", after which it hangs up without reading the rest).

Only "OK" is clean. A clamd that cannot be reached raises ScannerUnavailable (the file waits for
it); anything else that is not a verdict raises ScanFailed (a failed processing attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from services.runtime.errors import Unavailable

_CONNECT_TIMEOUT_SECONDS = 5.0
_END_OF_STREAM = struct.pack(">I", 0)


@dataclass(frozen=True)
class Verdict:
    infected: bool
    signature: str = ""  # what the scanner found, e.g. "Eicar-Test-Signature"


CLEAN = Verdict(infected=False)

# Bytes [start, end) of the content being scanned, as chunks; the stream is closed by the scanner.
ReadRange = Callable[[int, int], AsyncIterator[bytes]]


class Scanner(Protocol):
    async def scan(self, size: int, read: ReadRange) -> Verdict:
        """The verdict on `size` bytes of content, which `read` streams."""
        ...


class ScannerUnavailable(Unavailable):
    """The scanner could not be reached: nothing was learnt about the file."""


class ScanFailed(Exception):
    """The scanner was reached but gave no verdict (an error, a hang-up, a timeout)."""


def windows(size: int, window: int) -> list[tuple[int, int]]:
    """[start, end) ranges of at most `window` bytes covering [0, size): one when it fits, else
    windows half a window apart, so a pattern up to half a window long lies wholly inside one."""
    if size <= window:
        return [(0, size)]
    step = max(window // 2, 1)
    ranges = [(start, start + window) for start in range(0, size - window, step)]
    return [*ranges, (size - window, size)]


class ClamdScanner:
    def __init__(self, address: str, timeout_seconds: float, stream_max_bytes: int) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"clamd address must be host:port, got {address!r}")
        self.address, self.host, self.port = address, host.strip("[]"), int(port)
        self.timeout = timeout_seconds
        self.stream_max_bytes = stream_max_bytes

    async def scan(self, size: int, read: ReadRange) -> Verdict:
        # libclamav scans no stream longer than its file-size cap (2 GiB - 3 bytes): it would
        # answer OK without looking. Larger content goes as overlapping windows, each scanned.
        for start, end in windows(size, self.stream_max_bytes):
            async with contextlib.aclosing(read(start, end)) as chunks:
                verdict = await self._instream(chunks)
            if verdict.infected:
                return verdict
        return CLEAN

    async def _instream(self, chunks: AsyncIterator[bytes]) -> Verdict:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), _CONNECT_TIMEOUT_SECONDS)
        except (OSError, TimeoutError) as exc:
            raise ScannerUnavailable(f"clamd at {self.address} cannot be reached: {exc or type(exc).__name__}") from exc
        # Read while sending: clamd answers early (and hangs up) when it refuses the stream, and
        # a reply already read survives the failed write that follows.
        reply = asyncio.create_task(reader.readuntil(b"\0"))
        try:
            try:
                writer.write(b"zINSTREAM\0")
                async for chunk in chunks:
                    if reply.done():
                        break
                    writer.write(struct.pack(">I", len(chunk)))
                    writer.write(chunk)
                    await asyncio.wait_for(writer.drain(), self.timeout)
                else:
                    writer.write(_END_OF_STREAM)
                    await asyncio.wait_for(writer.drain(), self.timeout)
            except (ConnectionError, TimeoutError) as exc:
                if not reply.done():
                    raise ScanFailed(f"clamd at {self.address} stopped taking the stream: {exc or type(exc).__name__}") from exc
            try:
                answer = await asyncio.wait_for(asyncio.shield(reply), self.timeout)
            except TimeoutError:
                raise ScanFailed(f"clamd at {self.address} gave no verdict within {self.timeout:.0f} s") from None
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                raise ScanFailed(f"clamd at {self.address} hung up without a verdict: {exc}") from exc
        finally:
            reply.cancel()
            await asyncio.wait([reply])
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return _verdict(answer)


def _verdict(answer: bytes) -> Verdict:
    text = answer.rstrip(b"\0").decode(errors="replace").strip()
    if text == "stream: OK":
        return CLEAN
    if text.startswith("stream: ") and text.endswith(" FOUND"):
        return Verdict(infected=True, signature=text.removeprefix("stream: ").removesuffix(" FOUND").strip())
    raise ScanFailed(f"clamd: {text}")
