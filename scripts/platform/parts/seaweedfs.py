"""SeaweedFS: S3 object storage for attachments and for the Kafka broker's log segments."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from scripts.platform import binaries, probes
from scripts.platform.parts.base import Part
from scripts.platform.probes import Health
from scripts.platform.processes import ProcessSpec

_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes; past that weed would fail to listen


class SeaweedFS(Part):
    name = "seaweedfs"

    def _port(self, key: str) -> int:
        return int(self.cfg.get("seaweedfs", key))

    @property
    def endpoint(self) -> str:
        return self.ctx.url(self._port("s3_port"))

    @property
    def credentials(self) -> tuple[str, str, str]:
        section = self.cfg.section("seaweedfs")
        return section["access_key"], section["secret_key"], section.get("region", "us-east-1")

    def client(self):  # noqa: ANN201 - a boto3 S3 client
        return probes.s3_client(self.endpoint, *self.credentials)

    def probe(self) -> Health:
        return probes.s3(self.endpoint, *self.credentials)

    def ports(self) -> str:
        return f"s3 {self._port('s3_port')}, filer {self._port('filer_port')}, master {self._port('master_port')}"

    def _write_identities(self) -> str:
        access_key, secret_key, _ = self.credentials
        identities = {"identities": [{
            "name": "chat4all-local",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}
        path = self.cfg.run_dir / "s3.json"
        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(identities, out, indent=2)
        return str(path)

    def start(self) -> str:
        data = self.cfg.data_dir / "seaweedfs"
        data.mkdir(parents=True, exist_ok=True)
        host, port = self.cfg.host, self._port
        argv = [
            str(binaries.weed()),
            "-logtostderr",  # into var/log/seaweedfs.log instead of files under /tmp
            "server",
            f"-dir={data}", f"-ip={host}", f"-ip.bind={host}",
            f"-master.port={port('master_port')}", f"-master.port.grpc={port('master_grpc_port')}",
            "-master.volumeSizeLimitMB=1024", "-master.telemetry=false",
            # One master alone: waiting the default 10 s for an election only delays every start.
            "-master.electionTimeout=1s",
            f"-volume.port={port('volume_port')}", f"-volume.port.grpc={port('volume_grpc_port')}",
            "-volume.max=0",
            # The pre-stop pause lets other volume servers take over writes; there are none here.
            "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={port('filer_port')}", f"-filer.port.grpc={port('filer_grpc_port')}",
            "-s3", f"-s3.port={port('s3_port')}", f"-s3.port.grpc={port('s3_grpc_port')}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={self._write_identities()}",
        ]
        for flag, sock in (("-filer.localSocket", "filer"), ("-s3.localSocket", "s3")):
            path = self.cfg.run_dir / f"seaweedfs-{sock}.sock"
            if len(str(path)) < _SOCKET_PATH_MAX:  # else weed's default under /tmp (port-named)
                argv.append(f"{flag}={path}")
        spec = ProcessSpec(self.name, argv, cwd=data,
                           stop_timeout=self.cfg.stop_timeout(self.cfg.section("seaweedfs")))
        return self.ensure_process(spec)

    def stop(self) -> str:
        outcome = super().stop()
        if self.sup.running(self.name) is None:
            # weed leaves gRPC sockets named after our ports in /tmp, whatever flags it gets.
            for key in ("master_grpc_port", "volume_grpc_port", "filer_grpc_port", "s3_grpc_port"):
                for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-grpc-{self._port(key)}.sock"):
                    if sock.is_socket():
                        sock.unlink(missing_ok=True)
        return outcome

    def after_ready(self) -> None:
        """Create the buckets; right after start the volume layer may still refuse for a moment."""
        client = self.client()
        deadline = time.monotonic() + self.cfg.ready_timeout
        for bucket in self.cfg.get("seaweedfs", "buckets", []):
            while True:
                try:
                    client.head_bucket(Bucket=bucket)
                    break
                except client.exceptions.ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                        if time.monotonic() > deadline:
                            raise self.failure(f"cannot check bucket {bucket}: {exc}") from None
                        time.sleep(0.5)
                        continue
                try:
                    client.create_bucket(Bucket=bucket)
                    break
                except (client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists):
                    break
                except Exception as exc:  # noqa: BLE001 - retried until the deadline
                    if time.monotonic() > deadline:
                        raise self.failure(f"cannot create bucket {bucket}: {exc}") from None
                    time.sleep(0.5)
