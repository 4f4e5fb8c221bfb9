"""Servers of our own for the file tests, stopped when the session ends: SeaweedFS (`weed server
-s3` on free ports in a temporary directory, with the files bucket) and clamd (on a free port,
with the EICAR signature of scripts/platform/clamav and a test marker signature, nothing else)."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from scripts.platform import binaries
from scripts.platform.clamav import clamd_binary, clamd_config, prepare_databases
from scripts.platform.parts.clamd import ping
from tests.support.ports import free_port, free_ports, wait_for_port
from tests.support.processes import ChildProcess

BUCKET = "chat4all-files"
ACCESS_KEY, SECRET_KEY, REGION = "chat4all-test", "chat4all-test-secret", "us-east-1"
_PORT_NAMES = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str = BUCKET
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    def client(self):  # noqa: ANN201 - a boto3 S3 client
        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name=self.region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def settings(self) -> dict[str, str]:
        """The FileSettings fields that point a files service at this server."""
        return dict(s3_endpoint=self.endpoint, s3_access_key=self.access_key, s3_secret_key=self.secret_key,
                    s3_region=self.region, s3_bucket=self.bucket)


def _weed_argv(data: Path, identities: Path, ports: dict[str, int]) -> list[str]:
    # The command line of scripts/platform/parts/seaweedfs.py: every port given (or weed opens
    # defaults on all interfaces), telemetry off, a one-master election that does not wait.
    return [
        str(binaries.weed()), "-logtostderr", "server",
        f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}", f"-master.port.grpc={ports['master_grpc']}",
        "-master.volumeSizeLimitMB=1024", "-master.telemetry=false", "-master.electionTimeout=1s",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume_grpc']}",
        "-volume.max=0", "-volume.preStopSeconds=0",
        "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer_grpc']}",
        "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={identities}",
    ]


def _create_bucket(server: S3Server, timeout: float = 60.0) -> None:
    """Right after start the volume layer may refuse for a moment: retry until it takes."""
    client = server.client()
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.create_bucket(Bucket=server.bucket)
            return
        except (client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists):
            return
        except (ClientError, EndpointConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory, log_dir) -> S3Server:
    root = tmp_path_factory.mktemp("seaweedfs")
    identities = root / "s3.json"
    identities.write_text(json.dumps({"identities": [{
        "name": "chat4all-test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))
    ports = dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES))))
    (root / "data").mkdir()
    weed = ChildProcess("seaweedfs", _weed_argv(root / "data", identities, ports), log_dir, cwd=root)
    try:
        wait_for_port(ports["s3"], timeout=60)
        server = S3Server(endpoint=f"http://127.0.0.1:{ports['s3']}")
        _create_bucket(server)
        yield server
    finally:
        # Throwaway data: no need to wait out weed's slow graceful stop.
        weed.stop(timeout=5)
        # weed leaves gRPC sockets named after our ports in /tmp whatever flags it gets.
        for port in ports.values():
            for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                if sock.is_socket():
                    sock.unlink(missing_ok=True)


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
