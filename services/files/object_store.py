"""The S3 side of files: multipart uploads, presigned URLs, streaming checksums, and the reads
and writes of processing (a file's first bytes, its content in chunks, thumbnails).

boto3 blocks, so every call runs in a worker thread (asyncio.to_thread) and the event loop keeps
serving other RPCs. S3 failures become UNAVAILABLE, which the contract says is safe to retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from services.runtime.errors import FailedPrecondition, Unavailable

# Read in 1 MiB chunks while hashing: memory stays flat whatever the file's size.
_HASH_CHUNK = 1024 * 1024
# S3 lists at most 1,000 parts per call.
_PARTS_PER_PAGE = 1000
# What S3 answers CompleteMultipartUpload when the parts are wrong (too small, unknown, gone).
_REFUSED_PARTS = {"EntityTooSmall", "InvalidPart", "InvalidPartOrder", "NoSuchUpload"}


class ObjectMissing(Exception):
    """The object a file row points at is not in the bucket."""


@dataclass(frozen=True)
class StoredObject:
    size_bytes: int
    sha256: str


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def etag(value: str) -> str:
    """ETags come quoted from S3 and maybe unquoted from clients; compare them bare."""
    return value.strip().strip('"')


class ObjectStore:
    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str, bucket: str) -> None:
        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint or None,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name=region,
            # SigV4 presigned URLs work on every S3 implementation; path style needs no
            # per-bucket DNS name (SeaweedFS, MinIO).
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )

    async def _call(self, function, /, **kwargs):
        try:
            return await asyncio.to_thread(function, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable(f"object storage: {exc}") from exc

    async def start_multipart(self, key: str, content_type: str) -> str:
        answer = await self._call(self.client.create_multipart_upload, Bucket=self.bucket, Key=key, ContentType=content_type)
        return answer["UploadId"]

    async def part_urls(self, key: str, s3_upload_id: str, part_numbers: range, expires_in: int) -> list[str]:
        # Signing is local, but finding credentials may not be (an instance role asks the
        # metadata service), so it runs off the event loop too.
        return await asyncio.to_thread(
            lambda: [
                self.client.generate_presigned_url(
                    "upload_part",
                    Params={"Bucket": self.bucket, "Key": key, "UploadId": s3_upload_id, "PartNumber": n},
                    ExpiresIn=expires_in,
                )
                for n in part_numbers
            ]
        )

    async def download_url(self, key: str, expires_in: int, filename: str, content_type: str) -> str:
        """A GET URL whose response names the file and its detected type, and asks browsers to
        save it rather than render it (stored HTML must never run from our storage's origin)."""
        params = {
            "Bucket": self.bucket, "Key": key,
            "ResponseContentDisposition": content_disposition(filename),
            "ResponseContentType": content_type or "application/octet-stream",
        }
        return await asyncio.to_thread(self.client.generate_presigned_url, "get_object", Params=params, ExpiresIn=expires_in)

    async def uploaded_parts(self, key: str, s3_upload_id: str) -> dict[int, str] | None:
        """Part number -> bare ETag of every part S3 holds for the upload; None when S3 no
        longer knows the upload (assembled already, or aborted)."""
        parts: dict[int, str] = {}
        marker = 0
        while True:
            try:
                page = await asyncio.to_thread(
                    self.client.list_parts, Bucket=self.bucket, Key=key, UploadId=s3_upload_id,
                    MaxParts=_PARTS_PER_PAGE, PartNumberMarker=marker,
                )
            except ClientError as exc:
                if _code(exc) == "NoSuchUpload":
                    return None
                raise Unavailable(f"object storage: {exc}") from exc
            except BotoCoreError as exc:
                raise Unavailable(f"object storage: {exc}") from exc
            for part in page.get("Parts", []):
                parts[part["PartNumber"]] = etag(part["ETag"])
            if not page.get("IsTruncated"):
                return parts
            marker = page["NextPartNumberMarker"]

    async def complete_multipart(self, key: str, s3_upload_id: str, parts: list[tuple[int, str]]) -> None:
        try:
            await asyncio.to_thread(
                self.client.complete_multipart_upload, Bucket=self.bucket, Key=key, UploadId=s3_upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": f'"{etag(tag)}"'} for n, tag in parts]},
            )
        except ClientError as exc:
            # The client's parts, not the storage, are at fault: retrying would not help.
            if _code(exc) in _REFUSED_PARTS:
                raise FailedPrecondition(f"object storage refused the parts: {exc}") from exc
            raise Unavailable(f"object storage: {exc}") from exc
        except BotoCoreError as exc:
            raise Unavailable(f"object storage: {exc}") from exc

    async def abort_multipart(self, key: str, s3_upload_id: str) -> None:
        """Drop the upload and its parts; one S3 no longer knows is already gone."""
        try:
            await asyncio.to_thread(self.client.abort_multipart_upload, Bucket=self.bucket, Key=key, UploadId=s3_upload_id)
        except ClientError as exc:
            if _code(exc) != "NoSuchUpload":
                raise Unavailable(f"object storage: {exc}") from exc
        except BotoCoreError as exc:
            raise Unavailable(f"object storage: {exc}") from exc

    async def measure(self, key: str) -> StoredObject | None:
        """Size and SHA-256 of the stored object, streamed: never the whole object in memory;
        None when there is no such object."""
        try:
            return await asyncio.to_thread(self._measure_blocking, key)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise Unavailable(f"object storage: {exc}") from exc
        except BotoCoreError as exc:
            raise Unavailable(f"object storage: {exc}") from exc

    def _measure_blocking(self, key: str) -> StoredObject:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        digest, size = hashlib.sha256(), 0
        try:
            for chunk in body.iter_chunks(_HASH_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        finally:
            body.close()
        return StoredObject(size, digest.hexdigest())

    async def read_head(self, key: str, length: int) -> bytes:
        """The object's first `length` bytes (a ranged GET: the rest never leaves S3)."""
        return await self._reading(key, lambda: self._read_blocking(key, f"bytes=0-{length - 1}"))

    def _read_blocking(self, key: str, byte_range: str) -> bytes:
        body = self.client.get_object(Bucket=self.bucket, Key=key, Range=byte_range)["Body"]
        try:
            return body.read()
        finally:
            body.close()

    async def chunks(self, key: str, start: int, end: int, chunk_bytes: int = _HASH_CHUNK) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the object, a chunk at a time: one chunk in memory, whatever the
        size. Use it in `contextlib.aclosing`, so a consumer that stops early releases the GET."""
        body = await self._reading(
            key, lambda: self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]
        )
        try:
            while chunk := await self._reading(key, lambda: body.read(chunk_bytes)):
                yield chunk
        finally:
            await asyncio.to_thread(body.close)

    async def spool(self, key: str, max_memory_bytes: int) -> tempfile.SpooledTemporaryFile:
        """The whole object in a temporary file (in memory only up to `max_memory_bytes`),
        rewound; the caller closes it."""
        return await self._reading(key, lambda: self._spool_blocking(key, max_memory_bytes))

    def _spool_blocking(self, key: str, max_memory_bytes: int) -> tempfile.SpooledTemporaryFile:
        spooled = tempfile.SpooledTemporaryFile(max_size=max_memory_bytes)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                for chunk in body.iter_chunks(_HASH_CHUNK):
                    spooled.write(chunk)
            finally:
                body.close()
            spooled.seek(0)
            return spooled
        except BaseException:
            spooled.close()
            raise

    async def _reading(self, key: str, read):
        """Runs a blocking read in a thread: a missing object is ObjectMissing, any other
        failure UNAVAILABLE."""
        try:
            return await asyncio.to_thread(read)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                raise ObjectMissing(f"object storage holds no object {key}") from exc
            raise Unavailable(f"object storage: {exc}") from exc
        except BotoCoreError as exc:
            raise Unavailable(f"object storage: {exc}") from exc

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self._call(self.client.put_object, Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    async def delete(self, key: str) -> None:
        await self._call(self.client.delete_object, Bucket=self.bucket, Key=key)


def content_disposition(filename: str) -> str:
    """`attachment` with the name twice (RFC 6266): an ASCII fallback, and the exact UTF-8 name."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename) or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
