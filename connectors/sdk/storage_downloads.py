"""Files streamed from our storage's presigned download URLs into a platform's upload request.

A connector that uploads files to its platform (Telegram's multipart sends) opens the
download and hands its body to aiohttp as one part of a multipart/form-data request:
the bytes go from storage to the platform a chunk at a time, never whole in memory,
and the part has the download's Content-Length as its size, so the request states its
length instead of being chunked.

Storage failures are told apart from the platform's. An answer other than 200 (an
expired, revoked or deleted file) is FAILED_PRECONDITION: this send cannot succeed as
it is. A 5xx, a timeout or a broken connection, while opening or in the middle of the
upload, is StorageUnavailable: UNAVAILABLE for the caller, who retries, but not a
platform failure, so the platform's circuit breaker does not open for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import aiohttp
import grpc
from aiohttp import payload

from services.runtime.errors import FailedPrecondition, ServiceError

_CHUNK_BYTES = 256 * 1024


class StorageUnavailable(ServiceError):
    """Our storage did not serve a file: transient, and not the platform's fault."""

    code = grpc.StatusCode.UNAVAILABLE


class StoragePart(payload.AsyncIterablePayload):
    """A download's body as a multipart part; remembers a failure of the download itself."""

    def __init__(self, response: aiohttp.ClientResponse, **kwargs) -> None:
        self.failure: BaseException | None = None
        super().__init__(self._chunks(response), **kwargs)
        self._size = response.content_length

    async def _chunks(self, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as error:
            self.failure = error
            raise


class StorageDownloads:
    def __init__(self, *, connect_timeout_seconds: float, read_timeout_seconds: float,
                 redact: Callable[[str], str] = lambda text: text) -> None:
        # Transfers can be long: no total timeout here (the caller bounds the whole upload),
        # only connect and between-reads ones.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_seconds,
                                              sock_read=read_timeout_seconds)
        self._redact = redact
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> StorageDownloads:
        # A session of its own: a slow bucket is not the platform being down, and proxies from
        # the environment would see the presigned URLs.
        self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        return self

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @contextlib.asynccontextmanager
    async def multipart_file(self, url: str, *, name: str, filename: str, content_type: str,
                             what: str) -> AsyncIterator[StoragePart]:
        """The file behind `url` as the form field `name`, for the block (the upload request).
        `what` names the file in errors."""
        if self._session is None:
            raise RuntimeError("StorageDownloads.open() was not called")
        try:
            response = await self._session.get(url)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise StorageUnavailable(f"could not read {what} from storage: {self._describe(error)}") from None
        async with response:
            if response.status >= 500:
                raise StorageUnavailable(f"storage answered HTTP {response.status} for {what}")
            if response.status != 200:
                # Expired, revoked or gone: retrying this send with this URL cannot help.
                raise FailedPrecondition(f"the download URL of {what} answered HTTP {response.status}")
            part = StoragePart(response, content_type=content_type or "application/octet-stream")
            part.set_content_disposition("form-data", name=name, filename=filename)
            try:
                yield part
            except ServiceError:
                if part.failure is not None:
                    # The upload broke because the download did, not the platform.
                    raise StorageUnavailable(
                        f"reading {what} from storage failed: {self._describe(part.failure)}"
                    ) from None
                raise

    def _describe(self, error: BaseException) -> str:
        return self._redact(f"{type(error).__name__}: {error}".rstrip(": "))
