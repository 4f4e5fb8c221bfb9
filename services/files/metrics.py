"""Prometheus metrics of processing and the upload sweeper (the RPCs have the runtime's RED metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

FILES_SETTLED = Counter(
    "chat4all_files_settled_total", "Files that processing settled, by state: clean, quarantined or failed.", ["state"]
)
PROCESSING_RETRIES = Counter(
    "chat4all_files_processing_retries_total",
    "Processing tries to be made again, by reason: unavailable (clamd or S3 unreachable; not counted as an"
    " attempt) or failed (counted).",
    ["reason"],
)
PROCESSING_SECONDS = Histogram(
    "chat4all_files_processing_seconds",
    "Time to process a file: content type, malware scan and thumbnail.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
UPLOADS_EXPIRED = Counter(
    "chat4all_files_uploads_expired_total", "Uploads left incomplete past their expire_time, aborted and FAILED by the sweeper."
)
