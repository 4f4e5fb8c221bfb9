"""clamd of our own for the file tests (S3 is the session's `s3_server`, tests/conftest.py), on a
free port, with the EICAR signature of scripts/platform/clamav and a test marker signature,
nothing else; stopped when the session ends."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.platform.clamav import clamd_binary, clamd_config, prepare_databases
from scripts.platform.parts.clamd import ping
from tests.support.ports import free_port
from tests.support.processes import ChildProcess

# A body signature: content holding this marker anywhere is "infected" (the EICAR signature is a
# hash of the whole EICAR file, so it cannot show where in a large file the scan looked).
MARKER = b"CHAT4ALL-TEST-MARKER-7f3a9c1e5b"
MARKER_SIGNATURE = "Chat4All-Test-Marker"


@dataclass
class Clamd:
    address: str
    process: ChildProcess

    def stop(self) -> None:
        self.process.stop(timeout=10)


def start_clamd(root: Path, log_dir: Path, port: int | None = None, stream_max_length: str = "2100M") -> Clamd:
    """clamd with the platform's generated config, on `port` (a free one by default), answering PING."""
    port = port or free_port()
    root.mkdir(parents=True, exist_ok=True)
    databases = root / "databases"
    prepare_databases(databases, system=None)  # never the machine's: fast, and the same everywhere
    (databases / "marker.ndb").write_text(f"{MARKER_SIGNATURE}:0:*:{MARKER.hex()}\n")
    (root / "tmp").mkdir(exist_ok=True)
    config = root / "clamd.conf"
    config.write_text(clamd_config("127.0.0.1", port, databases, root / "tmp", stream_max_length))
    process = ChildProcess(f"clamd-{port}", [str(clamd_binary()), "-c", str(config)], log_dir)
    deadline = time.monotonic() + 60
    while not (health := ping("127.0.0.1", port)).ok:
        if process.proc.poll() is not None or time.monotonic() > deadline:
            process.stop()
            raise RuntimeError(f"clamd on port {port} did not answer PING ({health}):\n{process.log_text()[-3000:]}")
        time.sleep(0.1)
    return Clamd(f"127.0.0.1:{port}", process)


@pytest.fixture(scope="session")
def clamd(tmp_path_factory, log_dir) -> Clamd:
    server = start_clamd(tmp_path_factory.mktemp("clamd"), log_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def small_clamd(tmp_path_factory, log_dir) -> Clamd:
    """A clamd that refuses streams longer than 1 MiB (StreamMaxLength 1M)."""
    server = start_clamd(tmp_path_factory.mktemp("small-clamd"), log_dir, stream_max_length="1M")
    try:
        yield server
    finally:
        server.stop()
