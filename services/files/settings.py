"""FileService settings: the runtime's S3 connection (C4A_S3_*), plus the bucket and limits."""

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
