"""FileService settings: the runtime's S3 connection (C4A_S3_*), plus the bucket, limits, clamd
and the processing worker and upload sweeper that run in every replica."""

from __future__ import annotations

import dataclasses

from services.runtime.config import RuntimeSettings

MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True, kw_only=True)
class FileSettings(RuntimeSettings):
    # The bucket holding every file (C4A_S3_BUCKET); the local platform creates it.
    s3_bucket: str = "chat4all-files"
    # Size of every part but the last. S3 wants at least 5 MiB; the service grows it when a file
    # would need more than S3's 10,000 parts. 64 MiB makes 32 parts of a 2 GiB file.
    part_size_bytes: int = 64 * MiB
    # How long the part URLs and the upload itself stay valid.
    upload_expiry_seconds: int = 24 * 3600
    # How long a download URL works: short, since anyone holding it can read the file.
    download_url_seconds: int = 15 * 60

    # ClamAV's clamd, host:port (C4A_CLAMD_ADDRESS); the local platform runs one on 18150.
    clamd_address: str = "127.0.0.1:3310"
    # How long clamd may stay silent (taking a chunk, or scanning once the stream ended); a
    # 2 GiB file scans in well under a minute.
    clamd_timeout_seconds: float = 300.0
    # The longest stream clamd scans whole: libclamav skips (answers OK for) any file above
    # 2 GiB - 3 bytes whatever MaxFileSize says, so a bigger file goes as overlapping windows.
    # Must not exceed clamd's StreamMaxLength, or clamd refuses the stream (processing fails).
    clamd_stream_max_bytes: int = 2 * 1024**3 - 3

    # Files this replica processes at once; 0 runs no processing worker here.
    processing_concurrency: int = 4
    # The worker wakes on NOTIFY when an upload completes; this poll only catches up with
    # notifications lost while it was not listening.
    processing_poll_seconds: float = 5.0
    # A worker holds a file this long, renewed while it works; a crashed worker's file is
    # taken again once its lease lapses.
    processing_lease_seconds: float = 60.0
    # Tries (failed or cut short) before a file is FAILED with the last error. An unreachable
    # clamd or S3 never counts: the file waits in PROCESSING until they are back.
    processing_max_attempts: int = 3
    # The wait before the next try doubles from base to max with every try.
    processing_retry_base_seconds: float = 5.0
    processing_retry_max_seconds: float = 300.0

    # Images above this size get no thumbnail (the file is still CLEAN).
    thumbnail_max_source_bytes: int = 50 * MiB
    # Images with more pixels get no thumbnail: decoding them is a decompression bomb's payload.
    thumbnail_max_pixels: int = 50_000_000

    # How often uploads left UPLOADING past their expire_time are aborted and FAILED.
    sweep_interval_seconds: float = 60.0
