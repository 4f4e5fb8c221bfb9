"""Media sent by WhatsApp media id: each file uploaded to the business number once.

In "upload" media delivery the connector streams a file from its short-lived
download URL (our object storage) to `POST /{version}/{phone_number_id}/media`
and sends the returned id instead of a link: for storage WhatsApp cannot reach,
and so that one file sent to many users crosses the network once. The id is
kept in Redis per file (WhatsApp keeps uploads for 30 days; we reuse an id for
less), so every replica and every retry reuses it.

A large upload may outlast the router's call: it goes on in the background,
and the send answers UNAVAILABLE with a retry-after meanwhile (the router
defers; it is not an attempt). The next try finds the id.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import redis.asyncio as redis
from aiohttp import payload

from connectors.sdk.http import PlatformHttp
from connectors.sdk.meta import graph_error
from services.runtime.errors import FailedPrecondition, Unavailable

log = logging.getLogger("chat4all.whatsapp.media")
_CHUNK_BYTES = 256 * 1024
# How soon a send that found its file still uploading should come back.
_UPLOADING_RETRY_SECONDS = 2.0


class MediaUploads:
    def __init__(
        self,
        http: PlatformHttp,
        client: redis.Redis,
        prefix: str,
        upload_url: str,
        headers: dict[str, str],
        *,
        id_ttl_seconds: int,
        wait_seconds: float,
        upload_timeout_seconds: float,
    ) -> None:
        self.http = http
        self.redis = client
        self.prefix = prefix
        self.upload_url = upload_url
        self.headers = headers
        self.id_ttl_seconds = id_ttl_seconds
        self.wait_seconds = wait_seconds
        self.upload_timeout = aiohttp.ClientTimeout(total=upload_timeout_seconds)
        self._uploading: dict[str, asyncio.Task[str]] = {}
        # Storage downloads have a session of their own: a slow bucket is not WhatsApp being down.
        self._storage: aiohttp.ClientSession | None = None

    async def open(self) -> MediaUploads:
        self._storage = aiohttp.ClientSession(timeout=self.upload_timeout, trust_env=False)
        return self

    async def close(self) -> None:
        for task in self._uploading.values():
            task.cancel()
        if self._storage is not None:
            await self._storage.close()

    async def media_id(self, file_id: str, download_url: str, content_type: str, filename: str) -> str:
        """WhatsApp's id for the file: known already, or uploaded now (waiting `wait_seconds` at most)."""
        known = await self.redis.get(self._key(file_id))
        if known:
            return known.decode()
        task = self._uploading.get(file_id)
        if task is None:
            task = asyncio.create_task(self._upload(file_id, download_url, content_type, filename))
            self._uploading[file_id] = task
            task.add_done_callback(lambda done: self._forget(file_id, done))
        done, _ = await asyncio.wait([task], timeout=self.wait_seconds)
        if not done:
            raise Unavailable(
                f"{filename or file_id} is still being uploaded to WhatsApp", retry_after_seconds=_UPLOADING_RETRY_SECONDS
            )
        return task.result()

    async def _upload(self, file_id: str, download_url: str, content_type: str, filename: str) -> str:
        assert self._storage is not None
        try:
            async with self._storage.get(download_url) as download:
                if download.status != 200:
                    # An expired or revoked URL will not get better by retrying this send.
                    raise FailedPrecondition(f"the download URL of {file_id} answered HTTP {download.status}")
                with aiohttp.MultipartWriter("form-data") as form:
                    form.append("whatsapp").set_content_disposition("form-data", name="messaging_product")
                    form.append(content_type).set_content_disposition("form-data", name="type")
                    body = payload.AsyncIterablePayload(download.content.iter_chunked(_CHUNK_BYTES), content_type=content_type)
                    body.set_content_disposition("form-data", name="file", filename=filename or file_id)
                    form.append_payload(body)
                    answer = await self.http.request(
                        "media_upload", "POST", self.upload_url, data=form, headers=self.headers,
                        timeout_seconds=self.upload_timeout.total,
                    )
        except aiohttp.ClientError as error:
            raise Unavailable(f"could not read {file_id} from storage: {type(error).__name__}") from None
        if answer.status != 200:
            raise graph_error("WhatsApp", "upload media", answer)
        media_id = answer.json_object().get("id")
        if not isinstance(media_id, str) or not media_id:
            raise Unavailable("WhatsApp answered the media upload without an id")
        try:
            await self.redis.set(self._key(file_id), media_id, ex=self.id_ttl_seconds)
        except redis.RedisError:
            log.warning("uploaded, but could not keep the media id; the next send uploads again", extra={"file_id": file_id})
        log.info("media uploaded", extra={"file_id": file_id, "media_id": media_id})
        return media_id

    def _forget(self, file_id: str, task: asyncio.Task[str]) -> None:
        # A failed upload is tried again by the next send of the file; its error is read here so
        # that one nobody waited for is not reported as never retrieved.
        self._uploading.pop(file_id, None)
        if not task.cancelled():
            task.exception()

    def _key(self, file_id: str) -> str:
        return f"{self.prefix}:media:{file_id}"

